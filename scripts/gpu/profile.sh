#!/usr/bin/env bash
# Where GPU time goes: namm bench under Nsight Systems (when the device has nsys), the full
# cache and an all-zero NAMM on the Llama-3-8B shape, and the full cache at several chunk sizes.
# Writes OUTDIR/*.txt (kernel and API summaries) and OUTDIR/chunks.jsonl.
# Usage: NAMM=/tmp/namm CONTEXT=8192 bash scripts/gpu/profile.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/prof}; mkdir -p "$out"
NAMM=${NAMM:-/tmp/namm}; CONTEXT=${CONTEXT:-8192}; SHAPE=${SHAPE:-llama3-8b}
CHUNKS=${CHUNKS:-128 512 2048}
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$out/gpu.txt"
$NAMM namm-file init --zero --out /tmp/zero.namm >/dev/null
nsys=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
echo "nsys: ${nsys:-none}" | tee -a "$out/gpu.txt"
if [ -n "$nsys" ]; then
  for mem in full "namm:/tmp/zero.namm"; do
    tag=$(echo "$mem" | cut -c1-4)
    timeout 240 "$nsys" profile -o /tmp/p_$tag -f true --trace cuda --sample none --cpuctxsw none \
      $NAMM bench --shape $SHAPE --backend "xla:$plugin" --context $CONTEXT --decode 16 --memory "$mem" --json \
      > "$out/bench_$tag.json" 2>/tmp/nsys_$tag.err || tail -5 /tmp/nsys_$tag.err
    "$nsys" stats -q --report cuda_gpu_kern_sum --format csv /tmp/p_$tag.nsys-rep 2>/dev/null | head -60 > "$out/kern_$tag.csv"
    "$nsys" stats -q --report cuda_api_sum --format csv /tmp/p_$tag.nsys-rep 2>/dev/null | head -25 > "$out/api_$tag.csv"
  done
fi
for c in $CHUNKS; do
  timeout 200 $NAMM bench --shape $SHAPE --backend "xla:$plugin" --context $CONTEXT --decode 16 --chunk $c --json 2>/dev/null \
    | python3 -c "import json,sys; d=json.load(sys.stdin); d['chunk']=$c; print(json.dumps(d))" | tee -a "$out/chunks.jsonl"
done
