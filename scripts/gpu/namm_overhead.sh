#!/usr/bin/env bash
# NAMM overhead on the GPU: all-zero parameters evict nothing, so the difference
# to the full cache (timed in the same process by namm bench) is the NAMM's own cost.
# RUNS lists shape:context:features (features: graph, the default on a GPU, or host).
# Usage: NAMM=/tmp/namm bash scripts/gpu/namm_overhead.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/bench}; mkdir -p "$out"
NAMM=${NAMM:-/tmp/namm}
RUNS=${RUNS:-llama15m:8192:graph llama3-8b:8192:graph}
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
$NAMM namm-file init --zero --out /tmp/zero.namm
for run in $RUNS; do
  IFS=: read -r shape c feat <<<"$run"
  echo "== $shape context $c features=$feat"
  timeout 200 $NAMM bench --shape $shape --backend "xla:$plugin" --context $c --decode 32 \
    --memory "namm:/tmp/zero.namm,features=$feat" --json > /tmp/b.json 2> /tmp/b.err
  tail -3 /tmp/b.err; tee -a "$out/namm_overhead.jsonl" < /tmp/b.json
done
