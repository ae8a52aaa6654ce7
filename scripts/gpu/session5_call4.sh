#!/usr/bin/env bash
# Session 5, call 4 (on the device from the repository root, OUT set): scripts/gpu/runs/session5d.txt,
# then the kernels of the BAM scoring graphs (15M shape, 8k, all-zero NAMM).
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
unpack_model .gpu/model-a
NAMM=/tmp/namm RUN_TIMEOUT=400 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session5d.txt > /dev/null
python3 scripts/gpu/summarize_runs.py $OUT/runs/runs.jsonl
MODULES=namm_bam NAMM=/tmp/namm bash scripts/gpu/hlo_decode.sh $OUT/hlo llama15m 8192 namm:/tmp/zero.namm | head -60
