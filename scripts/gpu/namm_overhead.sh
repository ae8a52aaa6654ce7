#!/usr/bin/env bash
# NAMM overhead on the GPU: all-zero parameters evict nothing, so the difference
# to the full cache is the NAMM's own cost. Usage: NAMM=bin/namm bash scripts/gpu/namm_overhead.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/bench}; mkdir -p "$out"
NAMM=${NAMM:-bin/namm}
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
$NAMM namm-file init --zero --out /tmp/zero.namm
for shape_ctx in llama15m:8192 llama3-8b:2048; do
  shape=${shape_ctx%%:*}; c=${shape_ctx##*:}
  for mem in full namm:/tmp/zero.namm; do
    timeout 150 $NAMM bench --shape $shape --backend "xla:$plugin" --context $c --decode 32 --memory $mem --json 2>&1 | tail -1 | tee -a "$out/namm_overhead_graph.jsonl"
  done
done
