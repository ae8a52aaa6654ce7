#!/usr/bin/env bash
# Session 6, call 7 (on the device from the repository root, OUT set): scripts/gpu/runs/session6d.txt,
# then the Go CPU profile it wrote.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
unpack_model .gpu/model-a
NAMM=/tmp/namm RUN_TIMEOUT=200 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session6d.txt > /dev/null
python3 scripts/gpu/summarize_runs.py $OUT/runs/runs.jsonl
cp /tmp/a-h2o.prof $OUT/ 2>/dev/null
ls -la $OUT
