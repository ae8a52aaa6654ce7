#!/usr/bin/env bash
# Session 6, call 2 (on the device from the repository root, OUT set): scripts/gpu/runs/session6b.txt.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
unpack_model .gpu/model-a
NAMM=/tmp/namm RUN_TIMEOUT=280 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session6b.txt > /dev/null
python3 scripts/gpu/summarize_runs.py $OUT/runs/runs.jsonl
cp /tmp/*.prof $OUT/ 2>/dev/null
ls -la $OUT
