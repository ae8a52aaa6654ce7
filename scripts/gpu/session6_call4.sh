#!/usr/bin/env bash
# Session 6, call 4 (on the device from the repository root, OUT set): call 3's two failures,
# each test in its own process (call 3's fused-pass test ran out of GPU memory after the NAMM
# test's engine had taken it), and the NAMM test also at the session's first commit (7cb7346,
# engine_xla_old.test) to tell a regression from the test's known float sensitivity on a GPU.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz engine_xla.test engine_xla_old.test
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
for run in "engine_xla_old.test NAMMGraphFeaturesMatchHostXLA" "engine_xla.test NAMMGraphFeaturesMatchHostXLA" "engine_xla.test FusedPassMatchesLayersXLA" "engine_xla.test PrecompileCoversPrefillXLA"; do
  set -- $run
  echo "== $1 $2"
  (cd engine && GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0 NAMM_XLA_PLUGIN=$plugin timeout 150 \
    /tmp/$1 -test.run "^Test$2\$" -test.v > $OUT/$1.$2.txt 2>&1)
  echo "exit $?"
  grep -E '^(---|ok|FAIL|PASS)|xla_test.go|^panic' $OUT/$1.$2.txt | cut -c1-400 | head -12
done
