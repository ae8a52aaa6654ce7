#!/usr/bin/env bash
# Per-pass overhead on the GPU: namm bench under several XLA_FLAGS (command buffers = CUDA
# graphs), and the kernel count of the optimized decode graph (from an HLO dump).
# Usage: NAMM=/tmp/namm SHAPES="llama15m llama3-8b" bash scripts/gpu/xla_flags.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/flags}; mkdir -p "$out"
NAMM=${NAMM:-/tmp/namm}; SHAPES=${SHAPES:-llama15m}; CONTEXT=${CONTEXT:-8192}
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
python3 -c 'import jax, jaxlib; print("jax", jax.__version__, "jaxlib", jaxlib.__version__)' 2>&1 | tail -1 | tee "$out/versions.txt"
declare -a FLAGS=(
  ""
  "--xla_gpu_enable_command_buffer="
  "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,DYNAMIC_SLICE_FUSION --xla_gpu_graph_min_graph_size=1"
)
[ -n "${EXTRA_FLAGS:-}" ] && FLAGS+=("$EXTRA_FLAGS")
for shape in $SHAPES; do
  for f in "${FLAGS[@]}"; do
    echo "== $shape XLA_FLAGS='$f'"
    XLA_FLAGS="$f" timeout 240 $NAMM bench --shape $shape --backend "xla:$plugin" --context $CONTEXT --decode 32 ${CHUNK:+--chunk $CHUNK} --json 2>/tmp/f.err \
      | python3 -c "import json,sys; d=json.load(sys.stdin); d['xla_flags']='''$f'''; d.pop('kv_tokens_per_layer'); print(json.dumps(d))" | tee -a "$out/flags.jsonl"
    tail -2 /tmp/f.err
  done
done
# Kernel count of the optimized graphs (15M shape, short context).
rm -rf /tmp/dump
XLA_FLAGS="--xla_dump_to=/tmp/dump --xla_dump_hlo_as_text" timeout 120 $NAMM bench --shape llama15m --backend "xla:$plugin" --context 512 --decode 2 --json >/dev/null 2>&1
for f in /tmp/dump/*after_optimizations.txt; do
  echo "$(basename $f): fusions $(grep -c ' fusion(' $f) custom-calls $(grep -c 'custom-call(' $f) entry-instrs $(awk '/^ENTRY/,/^}/' $f | wc -l)"
done | tee "$out/kernels.txt"
ls /tmp/dump | head -50 > "$out/dump_files.txt"
big=$(ls -S /tmp/dump/*after_optimizations.txt | head -1); [ -n "$big" ] && cp "$big" "$out/largest_after_opt.txt"
