#!/usr/bin/env bash
# Batched inference on the GPU: namm bench --batch N against batch 1 in the same process, with
# fused pass graphs (the default: a batch step runs the sequences of one width and capacity as
# one graph) and with --no-fuse (one layer graph per step for every sequence), on model A and
# the Llama-3-8B shape; then the evolve-shaped work: namm evolve --bench-workers on model A's 4k
# prompts with NAMM members (NATS with 1, 2 and 4 workers at batch 1, the local pool at batch 1
# and at BATCH).
#
# Usage (repository root, device machine): bash scripts/gpu/batch.sh OUTDIR [BATCH]
#   BATCH: sequences per pass (default 16). Settings: MODEL (.gpu/model-a), RUN_TIMEOUT (300 s a run).
# Needs .gpu/namm.xz or /tmp/namm (scripts/gpu/stage.sh pack). Writes OUTDIR/gpu.txt,
# OUTDIR/batch.jsonl: one JSON line per run (namm bench --batch --json: batch 1 and batch N
# rows, their tokens/s, and the ratios), labelled, and OUTDIR/evolve.txt (evaluations/s).
# EVOLVE=0 skips the evolve part; EVOLVE_STAGE (niah_single:len=4096:n=16), EVOLVE_POP (4).
# BINS ("namm"): the builds to compare, each run by every one in turn (stage.sh pack-rev REV NAME
# makes .gpu/NAME.xz), labelled NAME/RUN; RUNS ("a-fused a-layers 8b-fused 8b-layers"): which runs.
set -uo pipefail
out=${1:?usage: batch.sh OUTDIR [BATCH]}; batch=${2:-16}
MODEL=${MODEL:-.gpu/model-a}; RUN_TIMEOUT=${RUN_TIMEOUT:-300}
source scripts/gpu/lib.sh
mkdir -p "$out"
BINS=${BINS:-namm}; RUNS=${RUNS:-a-fused a-layers 8b-fused 8b-layers}
binaries $BINS namm || exit 1
device_env
unpack_model "$MODEL" || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
while IFS=';' read -r run args; do
  [[ " $RUNS " == *" $run "* ]] || continue
  for bin in $BINS; do
    label=$run; [ "$BINS" = namm ] || label=$bin/$run
    echo "== $label" >&2
    timeout "$RUN_TIMEOUT" /tmp/$bin bench --backend "xla:$PLUGIN" $args --batch "$batch" --reps 1 --json \
      > /tmp/batch.json 2> /tmp/batch.err
    python3 - "$label" "$?" <<'PY' | tee -a "$out/batch.jsonl"
import json, sys
label, rc = sys.argv[1:3]
try:
    d = json.load(open('/tmp/batch.json'))
except Exception:
    err = [l for l in open('/tmp/batch.err', errors='replace').read().splitlines() if l.strip()]
    d = {'error': f'exit {rc}: ' + (err[-1][:300] if err else 'no output')}
d['label'] = label
print(json.dumps(d))
PY
  done
done <<EOF2
a-fused;--model $MODEL --context 4096 --decode 32
a-layers;--model $MODEL --context 4096 --decode 32 --no-fuse
8b-fused;--shape llama3-8b --context 8192 --decode 16
8b-layers;--shape llama3-8b --context 8192 --decode 16 --no-fuse
EOF2
[ "${EVOLVE:-1}" = 0 ] && exit 0
echo "== evolve --bench-workers" >&2
timeout "$RUN_TIMEOUT" /tmp/namm evolve --backend "xla:$PLUGIN" --model "$MODEL" --stage "${EVOLVE_STAGE:-niah_single:len=4096:n=16}" \
  --population "${EVOLVE_POP:-4}" --samples 16 --batch "$batch" --bench-workers --quiet --out /tmp/evolve-bench \
  > "$out/evolve.txt" 2> /tmp/evolve.err || { echo "evolve bench: exit $?"; tail -3 /tmp/evolve.err; } | tee -a "$out/evolve.txt"
cat "$out/evolve.txt"
