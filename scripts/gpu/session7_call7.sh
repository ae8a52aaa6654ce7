#!/usr/bin/env bash
# Session 7, call 7 (on the device from the repository root, OUT set), asynchronous build:
# 1. the all-zero NAMM (Llama-3-8B shape, 8k) with a Go CPU profile (the host side of its steps)
#    and XLA's optimised HLO of the pass graphs dumped, under ktrace (kernel names -> HLO);
# 2. H2O at budget 1,024 with 64 decoded tokens (per-token evictions; the statistics now come
#    back stacked over the layers, one copy per step).
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
build_ktrace
(cd /tmp && /tmp/namm namm-file init --zero --out /tmp/zero.namm >/dev/null)
b=(bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --prefix-graphs --json)
XLA_FLAGS="--xla_dump_to=/tmp/dump --xla_dump_hlo_as_text --xla_dump_hlo_module_re=.*fusedExec.*" CUDA_INJECTION64_PATH=/tmp/ktrace.so KTRACE_OUT=/tmp/k.tsv \
  timeout 300 /tmp/namm "${b[@]}" --decode 0 --memory namm:/tmp/zero.namm --cpuprofile $OUT/namm_cpu.prof > $OUT/bench_namm.json 2>/tmp/e1; tail -2 /tmp/e1; cat $OUT/bench_namm.json
xz -T8 -c /tmp/k.tsv > $OUT/k_namm.tsv.xz
tar cf - -C /tmp/dump $(cd /tmp/dump && ls | grep 'after_optimizations.txt$') | xz -T8 > $OUT/hlo_after.tar.xz
timeout 200 /tmp/namm "${b[@]}" --decode 64 --profile --memory h2o --budget 1024 > $OUT/bench_h2o.json 2>/tmp/e2; tail -2 /tmp/e2; cat $OUT/bench_h2o.json
ls -la $OUT
