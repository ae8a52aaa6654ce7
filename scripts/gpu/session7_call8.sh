#!/usr/bin/env bash
# Session 7, call 8 (on the device from the repository root, OUT set): H2O at budget 1,024 on the
# Llama-3-8B shape at 8k ran out of GPU memory in call 7 (and failed in call 2). Same command with
# the session-6 build (ffcc9e0: synchronous, statistics per layer) and with this session's build
# with and without fused passes, to find what it comes from.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm namm-s6
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
b=(bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --decode 32 --profile --memory h2o --budget 1024 --json)
for run in "namm-s6" "namm" "namm --no-fuse"; do
  set -- $run
  bin=$1; shift
  timeout 170 /tmp/$bin "${b[@]}" "$@" > /tmp/r.json 2>/tmp/e; echo "== $run rc=$? $(grep -v -E 'cuda_executor|Source Location|^external|^$' /tmp/e | tail -2 | cut -c1-400)"
  cat /tmp/r.json | python3 -c "import json,sys; d=json.load(sys.stdin); d.pop('kv_tokens_per_layer',None); d['run']='$run'; print(json.dumps(d))" | tee -a $OUT/h2o.jsonl
  nvidia-smi --query-gpu=memory.used --format=csv,noheader
done
