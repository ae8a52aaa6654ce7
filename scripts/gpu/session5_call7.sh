#!/usr/bin/env bash
# Session 5, call 7 (on the device from the repository root, OUT set): the XLA tests of the fused
# pass (with evictions inside the prefill's capacity) and of compiling ahead, on model A, then
# scripts/gpu/runs/session5g.txt.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm engine_xla.test
unpack_model .gpu/model-a
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
(cd engine && GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0 NAMM_XLA_PLUGIN=$plugin NAMM_TEST_MODEL=../.gpu/model-a timeout 250 \
  /tmp/engine_xla.test -test.run 'FusedPassMatchesLayersXLA|PrecompileCoversPrefillXLA' -test.v > $OUT/xla_test.txt 2>&1)
grep -E '^(---|ok|FAIL|PASS)|logits within|compiled ahead|not compiled|differ' $OUT/xla_test.txt | head -20
NAMM=/tmp/namm RUN_TIMEOUT=240 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session5g.txt > /dev/null
python3 scripts/gpu/summarize_runs.py $OUT/runs/runs.jsonl
