#!/usr/bin/env bash
# Session 7, call 3 (on the device from the repository root, OUT set): a kernel trace (ktrace.c,
# CUPTI; the device has no Nsight Systems) of an 8k prefill on the Llama-3-8B shape with an
# all-zero NAMM (the bench then runs the full cache in the same process), with XLA's optimised
# HLO dumped to name the fusions.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
build_ktrace || exit 1
(cd /tmp && /tmp/namm namm-file init --zero --out /tmp/zero.namm >/dev/null)
XLA_FLAGS="--xla_dump_to=/tmp/dump --xla_dump_hlo_as_text --xla_dump_hlo_module_re=.*" CUDA_INJECTION64_PATH=/tmp/ktrace.so KTRACE_OUT=/tmp/k_namm.tsv \
  timeout 330 /tmp/namm bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --decode 0 --profile --prefix-graphs \
  --memory namm:/tmp/zero.namm --json > $OUT/bench_namm.json 2>/tmp/err; tail -3 /tmp/err
cat $OUT/bench_namm.json
python3 scripts/gpu/ktrace_summary.py /tmp/k_namm.tsv --seg -1 --window 1.0 --top 30 > $OUT/k_full.txt
python3 scripts/gpu/ktrace_summary.py /tmp/k_namm.tsv --seg -2 --window 2.4 --top 60 > $OUT/k_namm.txt
head -20 $OUT/k_full.txt; head -50 $OUT/k_namm.txt | tail -40
xz -T8 -c /tmp/k_namm.tsv > $OUT/k_namm.tsv.xz
ls /tmp/dump | head -50 > $OUT/dump_list.txt; du -sh /tmp/dump
tar cf - -C /tmp/dump $(cd /tmp/dump && ls | grep after_optimizations.txt) | xz -T8 > $OUT/hlo_after.tar.xz
ls -la $OUT
