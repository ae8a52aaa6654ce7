#!/usr/bin/env bash
# Session 7, call 6 (on the device from the repository root, OUT set), asynchronous build:
# 1. the all-zero NAMM against the full cache (Llama-3-8B shape, 8k, 32 decoded tokens) under
#    ktrace, with the BAM executions of a step all launched before any read;
# 2. the full cache with 64 decoded tokens, XLA command buffers (CUDA graphs) off (the engine's
#    default) and on, now that the host no longer waits for each execution.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
build_ktrace
(cd /tmp && /tmp/namm namm-file init --zero --out /tmp/zero.namm >/dev/null)
b=(bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --prefix-graphs --json)
CUDA_INJECTION64_PATH=/tmp/ktrace.so KTRACE_OUT=/tmp/k.tsv timeout 250 /tmp/namm "${b[@]}" --decode 32 --memory namm:/tmp/zero.namm > $OUT/bench_namm.json 2>/tmp/e1; tail -2 /tmp/e1; cat $OUT/bench_namm.json
xz -T8 -c /tmp/k.tsv > $OUT/k_namm.tsv.xz
for f in "" "--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL"; do
  XLA_FLAGS="$f" timeout 140 /tmp/namm "${b[@]}" --decode 64 --memory full > /tmp/r.json 2>/tmp/e2; tail -2 /tmp/e2
  python3 -c "import json,sys; d=json.load(open('/tmp/r.json')); d['xla_flags']='''$f'''; d.pop('kv_tokens_per_layer',None); print(json.dumps(d))" | tee -a $OUT/full_cmdbuf.jsonl
done
ls -la $OUT
