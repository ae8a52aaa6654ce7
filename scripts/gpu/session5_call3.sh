#!/usr/bin/env bash
# Session 5, call 3 (on the device from the repository root, OUT set): compile-time flags and the
# NAMM step breakdown (scripts/gpu/runs/session5c.txt), then the BAM scoring graph's kernels.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
mkdir -p /tmp/xlacache/autotune
NAMM=/tmp/namm RUN_TIMEOUT=400 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session5c.txt
ls -la /tmp/xlacache /tmp/xlacache/autotune | head -5; du -sh /tmp/xlacache
python3 scripts/gpu/summarize_runs.py $OUT/runs/runs.jsonl
MODULES=namm_bam NAMM=/tmp/namm bash scripts/gpu/hlo_decode.sh $OUT/hlo llama15m 8192 namm:/tmp/zero.namm | head -40
