#!/usr/bin/env bash
# Session 5, call 1 (run on the device from the repository root, OUT set): the fused-pass XLA
# test on tiny-llama, the full cache on the 8B shape with the binary before (.gpu/namm-old.xz)
# and after (.gpu/namm.xz) the append-first attention, then the decode graph's kernels.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm namm-old engine_xla.test
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
(cd engine && NAMM_XLA_PLUGIN=$plugin timeout 200 /tmp/engine_xla.test -test.run 'FusedPassMatchesLayersXLA' -test.v > $OUT/xla_test.txt 2>&1)
grep -E '^(---|ok|FAIL|PASS)|logits within' $OUT/xla_test.txt
NAMM=/tmp/namm-old RUN_TIMEOUT=150 bash scripts/gpu/bench_runs.sh $OUT/old < scripts/gpu/runs/session5a.txt
NAMM=/tmp/namm RUN_TIMEOUT=150 bash scripts/gpu/bench_runs.sh $OUT/new < scripts/gpu/runs/session5a.txt
NAMM=/tmp/namm bash scripts/gpu/hlo_decode.sh $OUT/hlo llama3-8b 8192 full | head -60
