#!/usr/bin/env bash
# Session 5, call 2 (on the device from the repository root, OUT set): the 8B full cache with the
# session-4 binary (.gpu/namm-old.xz) and this session's (.gpu/namm.xz), XLA flag variants, and
# transformers (eager and sdpa attention) in the same call.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm namm-old
NAMM=/tmp/namm-old RUN_TIMEOUT=150 bash scripts/gpu/bench_runs.sh $OUT/old < scripts/gpu/runs/session5b-old.txt
NAMM=/tmp/namm RUN_TIMEOUT=150 bash scripts/gpu/bench_runs.sh $OUT/new < scripts/gpu/runs/session5b.txt
for attn in eager sdpa; do
  timeout 200 python3 scripts/gpu/hf_bench.py --shape llama3-8b --context 8192 --decode 64 --attn $attn > $OUT/hf_8b_$attn.json 2>$OUT/hf_$attn.err
  tail -c 400 $OUT/hf_8b_$attn.json; tail -2 $OUT/hf_$attn.err
done
NAMM=/tmp/namm bash scripts/gpu/hlo_decode.sh $OUT/hlo llama3-8b 8192 full | head -30
