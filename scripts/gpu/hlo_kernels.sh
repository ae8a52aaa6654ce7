#!/usr/bin/env bash
# Kernel counts of the engine's compiled pass graphs (15M shape, 1k context): dumps the optimized
# HLO of the full cache's and an all-zero NAMM's graphs and counts, per fused-pass module, its
# kernels (fusions, copies, custom calls), copies, input/output aliases and the Wo-sized multiply
# fusions of session 4. This made docs/data/gpu-h200-2026-11-26-s4/call3_copies.txt and
# call5_kernels.txt (the decode graph is the one with the fewest kernels per policy).
# Usage: NAMM=/tmp/namm bash scripts/gpu/hlo_kernels.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/hlo}; mkdir -p "$out"
NAMM=${NAMM:-/tmp/namm}
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
$NAMM namm-file init --zero --out /tmp/zero.namm >/dev/null
rm -rf /tmp/dump
for mem in full namm:/tmp/zero.namm; do
  XLA_FLAGS="--xla_dump_to=/tmp/dump --xla_dump_hlo_as_text" timeout 120 $NAMM bench --shape llama15m \
    --backend "xla:$plugin" --context 1024 --decode 2 --memory $mem >/dev/null 2>&1
done
for f in /tmp/dump/*fusedExec*after_optimizations.txt; do
  entry=$(awk '/^ENTRY/,/^}/' "$f")
  echo "$(basename "$f" | cut -c1-20) kernels $(grep -c ' fusion(\| copy(\|custom-call(' <<<"$entry")" \
    "copies $(grep -c ' copy(' <<<"$entry") aliased $(grep -c 'input_output_alias' "$f")" \
    "wo-products $(grep -c 'loop_multiply_fusion[.0-9]* = bf16\[2,128,256\]' <<<"$entry")"
done | tee "$out/kernels.txt"
cp "$(ls -S /tmp/dump/*fusedExec*after_optimizations.txt | head -1)" "$out/largest_after_opt.txt"
