#!/usr/bin/env bash
# The server's GPU target: namm bench-serve on a named shape with random weights (no weight files
# on the device), one client then CLIENTS, each for SECONDS, through the batched scheduler with
# CLIENTS slots.
#
# Usage (repository root, device machine):
#   bash scripts/gpu/serve_shape.sh OUTDIR [SHAPE] [CLIENTS] [SECONDS]
#   SHAPE   default llama3-8b; CLIENTS default 32; SECONDS default 60; MAX_TOKENS (64) per request
# Needs .gpu/namm.xz and .gpu/mistral-7b (tokenizer.json.xz, tokenizer_config.json): the prompts'
# tokenizer; ids the shape has beyond its 32,000 decode to nothing. Writes OUTDIR/bench.json
# (bench-serve --json) and OUTDIR/gpu.txt, and prints the table.
set -uo pipefail
out=${1:?usage: serve_shape.sh OUTDIR [SHAPE] [CLIENTS] [SECONDS]}
SHAPE=${2:-llama3-8b}; CLIENTS=${3:-32}; SECONDS_EACH=${4:-60}; MAX_TOKENS=${MAX_TOKENS:-64}
source scripts/gpu/lib.sh
mkdir -p "$out"
binaries namm || exit 1
device_env
tok=$(tokenizer_dir .gpu/mistral-7b) || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
/tmp/namm bench-serve --shape "$SHAPE" --tokenizer "$tok" --backend "xla:$PLUGIN" --slots "$CLIENTS" \
  --clients "$CLIENTS" --duration "${SECONDS_EACH}s" --max-tokens "$MAX_TOKENS" --json > "$out/bench.json" 2> "$out/serve.err"
rc=$?
quiet_errors "$out/serve.err" | tail -n 5
python3 - "$out/bench.json" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    sys.exit(f"no result: {e}")
for k in ("one", "many"):
    r = d[k]
    print(f"{r['clients']:3d} clients: {r['requests']} requests, {r['failures']} failed, {r['tokens_per_second']:.1f} tokens/s, p50 {r['p50_seconds']:.2f} s, p99 {r['p99_seconds']:.2f} s")
print(f"aggregate tokens/s, many / one: {d['speedup']:.2f}x")
PY
exit $rc
