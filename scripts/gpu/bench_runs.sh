#!/usr/bin/env bash
# Runs namm bench once per line of a run list and appends each JSON result, labelled, to
# OUTDIR/runs.jsonl. A line is "label;XLA_FLAGS;bench arguments" (the backend is added;
# "#" starts a comment). "zero.namm" in the arguments is an all-zero NAMM made first.
# Usage: NAMM=/tmp/namm bash scripts/gpu/bench_runs.sh OUTDIR < runs.txt
set -uo pipefail
out=${1:-/tmp/runs}; mkdir -p "$out"
NAMM=${NAMM:-/tmp/namm}
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
nvidia-smi --query-gpu=name --format=csv,noheader > "$out/gpu.txt"
(cd /tmp && $NAMM namm-file init --zero --out /tmp/zero.namm >/dev/null)
while IFS=';' read -r label flags args; do
  [[ -z "$label" || "$label" == \#* ]] && continue
  args=${args//zero.namm//tmp/zero.namm}
  echo "== $label"
  XLA_FLAGS="$flags" timeout ${RUN_TIMEOUT:-240} $NAMM bench --backend "xla:$plugin" $args --json 2>/tmp/run.err \
    | python3 -c "import json,sys; d=json.load(sys.stdin); d['label']='$label'; d['xla_flags']='''$flags'''; d.pop('kv_tokens_per_layer',None); print(json.dumps(d))" \
    | tee -a "$out/runs.jsonl"
  tail -2 /tmp/run.err
done
