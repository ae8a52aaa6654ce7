#!/usr/bin/env bash
# Session 7, call 5 (on the device from the repository root, OUT set): asynchronous dispatch.
# go-xla v0.1.4 waits for every execution to finish before returning (ExecuteAndWait), so the
# host never runs ahead of the GPU. namm-async is built with a go-xla whose Execute leaves
# device_complete_events NULL (PJRT then returns once enqueued). Same command, both builds:
# the all-zero NAMM and the full cache on the Llama-3-8B shape at 8k with 32 decoded tokens;
# then TestFusedPassMatchesLayersXLA with the asynchronous build.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm namm-async engine_xla_async.test
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
(cd /tmp && /tmp/namm namm-file init --zero --out /tmp/zero.namm >/dev/null)
args=(bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --decode 32 --prefix-graphs --memory namm:/tmp/zero.namm --json)
for b in namm-async namm; do
  timeout 260 /tmp/$b "${args[@]}" > $OUT/bench_$b.json 2>/tmp/err_$b; tail -2 /tmp/err_$b; echo "$b: $(cat $OUT/bench_$b.json)"
done
(cd engine && NAMM_XLA_PLUGIN=$plugin timeout 100 /tmp/engine_xla_async.test -test.run '^TestFusedPassMatchesLayersXLA$' -test.v 2>&1 | grep -v -E 'cuda_executor|Source Location|^external|^$' > $OUT/FusedPassMatchesLayersXLA_async.txt)
grep -E '^(---|ok|FAIL|PASS)|    --- |xla_test.go|^panic' $OUT/FusedPassMatchesLayersXLA_async.txt | cut -c1-300 | head -20
