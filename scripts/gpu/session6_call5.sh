#!/usr/bin/env bash
# Session 6, call 5 (on the device from the repository root, OUT set): the XLA tests of holes
# against gathering and of the fused pass, each in a process of its own, on model A; then
# scripts/gpu/runs/session6c.txt.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm engine_xla.test
unpack_model .gpu/model-a
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
for test in HolesMatchGatherXLA FusedPassMatchesLayersXLA; do
  echo "== $test"
  (cd engine && GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0 NAMM_XLA_PLUGIN=$plugin NAMM_TEST_MODEL=../.gpu/model-a timeout 200 \
    /tmp/engine_xla.test -test.run "^Test$test\$" -test.v > $OUT/$test.txt 2>&1)
  echo "exit $?"
  grep -E '^(---|ok|FAIL|PASS)|xla_test.go|hostattn_test.go|^panic' $OUT/$test.txt | cut -c1-300 | head -12
done
NAMM=/tmp/namm RUN_TIMEOUT=200 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session6c.txt > /dev/null
python3 scripts/gpu/summarize_runs.py $OUT/runs/runs.jsonl
