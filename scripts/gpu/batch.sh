#!/usr/bin/env bash
# Batched inference on the GPU: the engine's batch test on XLA (TestBatchMatchesAloneXLA: each
# sequence of a batch against the same sequence alone, with --no-fuse's batched layer graphs and
# with fused graphs), then namm bench --batch N against batch 1 in the same process, fused and
# --no-fuse (the batched layer graphs), on model A and the Llama-3-8B shape.
# Usage: NAMM=/tmp/namm TEST=/tmp/engine_xla.test MODEL=.gpu/model-a bash scripts/gpu/batch.sh OUTDIR [BATCH]
# (engine_xla.test: go test -tags "namm_xla nojapanese noembedmodel" -c -o engine_xla.test ./engine)
# Writes OUTDIR/gpu.txt, OUTDIR/xla_batch_test.txt and OUTDIR/batch_bench.jsonl (one JSON line per run).
set -uo pipefail
source scripts/gpu/lib.sh
out=${1:-/tmp/batch}; batch=${2:-16}; mkdir -p "$out"
NAMM=${NAMM:-/tmp/namm}; TEST=${TEST:-/tmp/engine_xla.test}; MODEL=${MODEL:-.gpu/model-a}
unpack_model "$MODEL" || exit 1
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$out/gpu.txt"
if [ -x "$TEST" ]; then
  (cd engine && NAMM_XLA_PLUGIN=$plugin NAMM_TEST_MODEL=../$MODEL timeout 300 "$TEST" -test.run BatchMatchesAloneXLA -test.v 2>&1) \
    | tail -30 | tee "$out/xla_batch_test.txt"
fi
for f in "" --no-fuse; do
  timeout 240 $NAMM bench --model "$MODEL" --backend "xla:$plugin" --context 4096 --decode 32 --batch "$batch" --reps 1 $f --json \
    | python3 -c "import json,sys; d=json.load(sys.stdin); d['model']='model-a'; d['fused']='$f'==''; print(json.dumps(d))" | tee -a "$out/batch_bench.jsonl"
  timeout 300 $NAMM bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --decode 32 --batch "$batch" --reps 1 $f --json \
    | python3 -c "import json,sys; d=json.load(sys.stdin); d['model']='llama3-8b'; d['fused']='$f'==''; print(json.dumps(d))" | tee -a "$out/batch_bench.jsonl"
done
