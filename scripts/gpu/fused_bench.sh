#!/usr/bin/env bash
# One graph per pass against one graph per layer on the GPU (issue 2), beside transformers eager:
# the engine's XLA tests (fused vs per-layer logits and tokens; NAMM graph vs host features),
# then namm bench for the Llama-3-8B and 15M shapes at 8k, fused and --no-fuse, and hf_bench.py.
# Usage: NAMM=/tmp/namm TEST=/tmp/engine_xla.test MODEL=.gpu/model-a bash scripts/gpu/fused_bench.sh OUTDIR
# (engine_xla.test: go test -tags "namm_xla nojapanese noembedmodel" -c -o engine_xla.test ./engine)
set -uo pipefail
out=${1:-/tmp/bench}; mkdir -p "$out"
NAMM=${NAMM:-/tmp/namm}; TEST=${TEST:-/tmp/engine_xla.test}; MODEL=${MODEL:-.gpu/model-a}
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$out/gpu.txt"
if [ -x "$TEST" ]; then
  (cd engine && NAMM_XLA_PLUGIN=$plugin NAMM_TEST_MODEL=../$MODEL timeout 240 "$TEST" -test.run XLA -test.v 2>&1) | tail -20 | tee "$out/xla_test.txt"
fi
for shape in llama3-8b llama15m; do
  for f in "" --no-fuse; do
    timeout 200 $NAMM bench --shape $shape --backend "xla:$plugin" --context 8192 --decode 32 $f --json 2>/dev/null \
      | python3 -c "import json,sys; d=json.load(sys.stdin); d['fused']='$f'==''; print(json.dumps(d))" | tee -a "$out/fused_bench.jsonl"
  done
done
timeout 200 python3 scripts/gpu/hf_bench.py --shape llama3-8b --context 8192 --decode 32 2>&1 | tail -1 | tee "$out/hf_8b.json"
