#!/usr/bin/env bash
# Session 5, call 6 (on the device from the repository root, OUT set): scripts/gpu/runs/session5f.txt.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
unpack_model .gpu/model-a
NAMM=/tmp/namm RUN_TIMEOUT=400 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session5f.txt > /dev/null
python3 scripts/gpu/summarize_runs.py $OUT/runs/runs.jsonl
