#!/usr/bin/env bash
# Session 7, call 2 (on the device from the repository root, OUT set): TestFusedPassMatchesLayersXLA
# (tiny-llama) with the statistics stacked over the layers, then scripts/gpu/runs/session7b.txt.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm engine_xla.test
plugin=$(xla_plugin)
(cd engine && GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0 NAMM_XLA_PLUGIN=$plugin timeout 150 \
  /tmp/engine_xla.test -test.run '^TestFusedPassMatchesLayersXLA$' -test.v > $OUT/FusedPassMatchesLayersXLA.txt 2>&1)
echo "exit $?"
grep -E '^(---|ok|FAIL|PASS)|    --- |xla_test.go|^panic' $OUT/FusedPassMatchesLayersXLA.txt | cut -c1-300 | head -20
NAMM=/tmp/namm RUN_TIMEOUT=200 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session7b.txt > /dev/null
python3 scripts/gpu/summarize_runs.py $OUT/runs/runs.jsonl
