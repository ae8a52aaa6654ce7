#!/usr/bin/env bash
# A kernel trace of one namm bench run on the GPU machine, for a device without Nsight Systems:
# scripts/gpu/ktrace.c (a CUPTI injection library, built here) logs every kernel's start,
# duration and name; scripts/gpu/ktrace_summary.py cuts the trace into segments at idle gaps
# (compilations) and sums the GPU time per kernel. With HLO=1, XLA's optimised HLO of the pass
# graphs is dumped too: a kernel's name is a fusion of its module there.
#
# Usage (repository root, device machine): bash scripts/gpu/trace.sh OUTDIR BENCH_ARGUMENTS...
#   e.g. bash scripts/gpu/trace.sh $OUT --shape llama3-8b --context 8192 --decode 0 \
#          --prefix-graphs --memory namm:zero.namm      (zero.namm: an all-zero NAMM)
# namm bench runs twice and times the second run, then the full cache for a policy's run: the
# timed run is the second-to-last long segment (the full cache's, the last). Writes OUTDIR:
# bench.json, trace.tsv.xz (the raw trace; large), segments.txt (the summary of every segment
# and of the last two), hlo_after.tar.xz with HLO=1. Summarise a window of it again with e.g.
#   xz -dc trace.tsv.xz > k.tsv; python3 scripts/gpu/ktrace_summary.py k.tsv --seg 18 --window 1.6
set -uo pipefail
out=${1:?usage: trace.sh OUTDIR BENCH_ARGUMENTS...}; shift
[ $# -gt 0 ] || { echo "trace.sh: give namm bench's arguments" >&2; exit 2; }
source scripts/gpu/lib.sh
mkdir -p "$out"
binaries namm || exit 1
device_env
zero_namm
build_ktrace || exit 1
args=("${@//zero.namm//tmp/zero.namm}")
rm -rf /tmp/dump /tmp/k.tsv
xla=""; [ "${HLO:-0}" = 1 ] && xla="--xla_dump_to=/tmp/dump --xla_dump_hlo_as_text --xla_dump_hlo_module_re=.*fusedExec.*"
XLA_FLAGS="$xla" CUDA_INJECTION64_PATH=/tmp/ktrace.so KTRACE_OUT=/tmp/k.tsv \
  timeout ${RUN_TIMEOUT:-300} /tmp/namm bench --backend "xla:$PLUGIN" "${args[@]}" --json > "$out/bench.json" 2>/tmp/trace.err
quiet_errors /tmp/trace.err | tail -2; cat "$out/bench.json"
{ python3 scripts/gpu/ktrace_summary.py /tmp/k.tsv --seg -1 --top 30
  echo; python3 scripts/gpu/ktrace_summary.py /tmp/k.tsv --seg -2 --top 60 | sed -n '/^segment -\?[0-9]*,/,$p'; } > "$out/segments.txt"
cat "$out/segments.txt" | head -80
xz -T0 -c /tmp/k.tsv > "$out/trace.tsv.xz"
[ -d /tmp/dump ] && tar cf - -C /tmp/dump $(cd /tmp/dump && ls | grep 'after_optimizations.txt$') | xz -T0 > "$out/hlo_after.tar.xz"
ls -la "$out"
