#!/usr/bin/env bash
# Session 7, call 10 (on the device from the repository root, OUT set): after releasing the cache
# buffers that a gather replaces (they waited for Go's garbage collector): H2O at budget 1,024
# with --prefix-graphs on the Llama-3-8B shape (it ran out of memory in calls 2, 7 and 9), then
# the XLA tests that gather and evict on tiny-llama (each in its own process).
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm engine_xla.test
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
timeout 170 /tmp/namm bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --prefix-graphs --json --decode 32 --profile --memory h2o --budget 1024 > /tmp/r.json 2>/tmp/e
echo "== h2o prefix rc=$? $(grep -v -E 'cuda_executor|Source Location|^external|^$' /tmp/e | tail -1 | cut -c1-300)"
python3 -c "import json; d=json.load(open('/tmp/r.json')); d.pop('kv_tokens_per_layer',None); print(json.dumps(d))" | tee $OUT/h2o_prefix.json
for t in TestHolesMatchGatherXLA TestNAMMGraphFeaturesMatchHostXLA; do
  (cd engine && NAMM_XLA_PLUGIN=$plugin timeout 120 /tmp/engine_xla.test -test.run "^$t\$" -test.v 2>&1 | grep -v -E 'cuda_executor|Source Location|^external|^$' > $OUT/$t.txt)
  grep -E '^(---|ok|FAIL|PASS)|    --- |_test.go|^panic' $OUT/$t.txt | cut -c1-300 | head -8
done
