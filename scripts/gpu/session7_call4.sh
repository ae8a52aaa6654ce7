#!/usr/bin/env bash
# Session 7, call 4 (on the device from the repository root, OUT set): after the float32 DFT and
# folds (no TF32 products) and the rows read from the rounded probabilities of P.V:
# TestNAMMGraphFeaturesMatchHostXLA (tiny-llama), then the all-zero NAMM against the full cache on
# the Llama-3-8B shape at 8k, with --profile and without (the latter under ktrace).
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm engine_xla.test
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
(cd engine && NAMM_XLA_PLUGIN=$plugin timeout 150 /tmp/engine_xla.test -test.run '^TestNAMMGraphFeaturesMatchHostXLA$' -test.v > $OUT/NAMMGraphFeaturesMatchHostXLA.txt 2>&1)
echo "test exit $?"; grep -E '^(---|ok|FAIL|PASS)|    --- |_test.go|^panic' $OUT/NAMMGraphFeaturesMatchHostXLA.txt | cut -c1-300 | head -20
build_ktrace
(cd /tmp && /tmp/namm namm-file init --zero --out /tmp/zero.namm >/dev/null)
args=(bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --decode 0 --prefix-graphs --memory namm:/tmp/zero.namm --json)
timeout 240 /tmp/namm "${args[@]}" --profile > $OUT/bench_profile.json 2>/tmp/err1; tail -2 /tmp/err1; cat $OUT/bench_profile.json
CUDA_INJECTION64_PATH=/tmp/ktrace.so KTRACE_OUT=/tmp/k.tsv timeout 240 /tmp/namm "${args[@]}" > $OUT/bench_noprofile.json 2>/tmp/err2; tail -2 /tmp/err2; cat $OUT/bench_noprofile.json
python3 scripts/gpu/ktrace_summary.py /tmp/k.tsv --top 5 | head -40
xz -T8 -c /tmp/k.tsv > $OUT/k.tsv.xz
ls -la $OUT
