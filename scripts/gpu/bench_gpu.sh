#!/usr/bin/env bash
# GPU benchmark of the engine against transformers (eager), on the device
# machine. Build the binary first where Go is: go build -o bin/namm ./cmd/namm
# Usage: bash scripts/gpu/bench_gpu.sh OUTDIR [CONTEXT]
set -uo pipefail
out=${1:-/tmp/bench}; ctx=${2:-8192}
mkdir -p "$out"
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
export NAMM=${NAMM:-bin/namm}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
# 1. Parity smoke test on the fixtures, f32 on the GPU: greedy tokens must equal transformers'.
for m in tiny-llama tiny-mistral tiny-qwen2; do
  python3 - "$m" "$plugin" <<'PY' 2>&1 | tee -a "$out/parity.txt"
import json, os, subprocess, sys
m, plugin = sys.argv[1], sys.argv[2]
g = json.load(open(f"testdata/models/{m}/golden.json"))
ok = 0
for p in g["prompts"]:
    r = subprocess.run([os.environ.get("NAMM","bin/namm"), "generate", "--model", f"testdata/models/{m}", "--backend", "xla:" + plugin,
                        "--dtype", "f32", "--prompt", p["text"], "--max-new-tokens", str(len(p["greedy"])), "--json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(m, "ERROR", r.stderr[-2000:]); continue
    got = json.loads(r.stdout)["ids"]
    ok += got == p["greedy"]
    if got != p["greedy"]:
        print(m, "MISMATCH", got, p["greedy"])
print(m, f"greedy parity on xla f32: {ok}/{len(g['prompts'])}")
PY
done
# 2. Our engine, Llama-3-8B shape, bf16, full cache and NAMM-free.
$NAMM bench --shape llama3-8b --backend "xla:$plugin" --context "$ctx" --decode 32 --json 2>&1 | tee "$out/namm_8b.json"
# 3. transformers eager in the same run.
python3 scripts/gpu/hf_bench.py --shape llama3-8b --context "$ctx" --decode 32 2>&1 | tail -1 | tee "$out/hf_8b.json"
# 4. NAMM overhead: all-zero parameters evict nothing, so the difference to the full cache is
#    the cost of computing the features and scores.
$NAMM namm-file init --zero --out /tmp/zero.namm
#    NAMM's features and scorer run on the host (see docs/architecture.md), so the 8B model is
#    measured at 2k tokens beside its own full-cache run, and the 15M shape at the full context.
for shape_ctx in llama3-8b:2048 llama15m:$ctx; do
  shape=${shape_ctx%%:*}; c=${shape_ctx##*:}
  for mem in full namm:/tmp/zero.namm; do
    timeout 240 $NAMM bench --shape $shape --backend "xla:$plugin" --context $c --decode 32 --memory $mem --json 2>&1 | tail -1 | tee -a "$out/namm_overhead.jsonl"
  done
done
