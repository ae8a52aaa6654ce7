#!/usr/bin/env bash
# Session 7, call 9 (on the device from the repository root, OUT set):
# 1. rounded probabilities computed from the scores (exp(s - m - log den)) instead of e/den:
#    the all-zero NAMM against the full cache (Llama-3-8B shape, 8k, 32 decoded tokens), this
#    build (namm) and the previous commit's (namm-base, 31179e6), same command;
# 2. H2O at budget 1,024 with --prefix-graphs, the session-6 build (ffcc9e0): did it run out of
#    memory before this session too (calls 2 and 7 did, with prefix graphs only)?
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm namm-base namm-s6
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
(cd /tmp && /tmp/namm namm-file init --zero --out /tmp/zero.namm >/dev/null)
b=(bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --prefix-graphs --json)
for bin in namm namm-base; do
  timeout 200 /tmp/$bin "${b[@]}" --decode 32 --memory namm:/tmp/zero.namm > /tmp/r.json 2>/tmp/e; echo "== $bin rc=$? $(grep -v -E 'cuda_executor|Source Location|^external|^$' /tmp/e | tail -1 | cut -c1-300)"
  python3 -c "import json; d=json.load(open('/tmp/r.json')); d.pop('kv_tokens_per_layer',None); d['run']='$bin'; print(json.dumps(d))" | tee -a $OUT/runs.jsonl
done
timeout 150 /tmp/namm-s6 "${b[@]}" --decode 32 --profile --memory h2o --budget 1024 > /tmp/r.json 2>/tmp/e; echo "== s6 h2o prefix rc=$? $(grep -v -E 'cuda_executor|Source Location|^external|^$' /tmp/e | tail -1 | cut -c1-300)"
python3 -c "import json; d=json.load(open('/tmp/r.json')); d.pop('kv_tokens_per_layer',None); d['run']='namm-s6 h2o prefix'; print(json.dumps(d))" | tee -a $OUT/runs.jsonl
