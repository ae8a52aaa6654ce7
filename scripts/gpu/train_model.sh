#!/usr/bin/env bash
# Trains one base model on the device machine: the token file (namm train-data on the corpus),
# scripts/gpu/train_base.py, the parity goldens (check_trained.py), then packs the model for
# the trip back into RESULT (parts of at most 15 MiB, as the device's file limits require).
#
# Usage (repository root, device machine):
#   bash scripts/gpu/train_model.sh NAME CONFIG TOKENIZER MINUTES [RESULT]
# e.g.  bash scripts/gpu/bg.sh start c bash scripts/gpu/train_model.sh model-c configs/model-c.json .gpu/mistral-7b 9
#
# Inputs: .gpu/namm.xz (scripts/gpu/stage.sh pack), TOKENIZER (a directory with tokenizer.json or
# tokenizer.json.xz, e.g. .gpu/mistral-7b),
# CORPUS (default .gpu/corpus.jsonl.xz, from namm corpus; xz-compressed to travel).
# Settings (environment): TOKENS (training tokens, default 120M), SYNTH (share of sequences
# packed with task examples, 0.4), TASKS (generators, facts), SEED (0), RESUME=1 (continue the
# checkpoint in /tmp/models/NAME.ckpt: the token file is rebuilt identically from the seed),
# LONG_SHARE (share of examples that fill their sequence, 0.5), MAX_EXAMPLE (cap of the others'
# prompts in tokens, 0: none), INIT (a model directory or DIR.tgz whose weights start the training: a shorter-context model of
# the same shape to extend), LR (peak learning rate instead of the config's).
# RESULT (default /tmp/result/NAME): NAME.tgz.part-*, train_log.jsonl, train_summary.json,
# loss_curve.png, data.json (what train-data made), check.log.
set -euo pipefail
name=${1:?usage: train_model.sh NAME CONFIG TOKENIZER MINUTES [RESULT]}; config=${2:?}; tok=${3:?}; minutes=${4:?}
result=${5:-/tmp/result/$name}
TOKENS=${TOKENS:-120000000}; SYNTH=${SYNTH:-0.4}; TASKS=${TASKS:-facts}; SEED=${SEED:-0}
CORPUS=${CORPUS:-.gpu/corpus.jsonl.xz}
source scripts/gpu/lib.sh
tok=$(tokenizer_dir "$tok") || exit 1
mkdir -p /tmp/data /tmp/models "$result"
unpack_binary /tmp/namm
if [ ! -f /tmp/data/corpus.jsonl ]; then
  python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2]+'.tmp','wb'))" "$CORPUS" /tmp/data/corpus.jsonl
  mv /tmp/data/corpus.jsonl.tmp /tmp/data/corpus.jsonl
fi
seq_len=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train']['seq_len'])" "$config")
data=/tmp/data/$name.bin
if [ ! -f "$data" ]; then
  echo "== train-data $(date -u +%T)"
  /tmp/namm train-data --tokenizer "$tok" --corpus /tmp/data/corpus.jsonl --tasks "$TASKS" \
    --tokens "$TOKENS" --seq-len "$seq_len" --seed "$SEED" --synthetic-frac "$SYNTH" \
    --long-share "${LONG_SHARE:-0.5}" --max-example "${MAX_EXAMPLE:-0}" --out "$data" 2>&1 | tr "\r" "\n" | grep --line-buffered -v "^ *$" | tail -n 4
fi
python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); s=d['stats']; s.pop('source_tokens',None); json.dump(d,open(sys.argv[2],'w'),indent=1)" "$data.json" "$result/data.json"
echo "== train $(date -u +%T)"
resume=; [ "${RESUME:-0}" = 1 ] && resume=--resume
extra=()
if [ -n "${INIT:-}" ]; then unpack_model "$INIT"; extra+=(--init "$INIT"); fi
[ -n "${LR:-}" ] && extra+=(--lr "$LR")
PYTHONUNBUFFERED=1 python3 scripts/gpu/train_base.py --config "$config" --data "$data" \
  --out /tmp/models/$name --tokenizer "$tok" --max-minutes "$minutes" $resume "${extra[@]}" 2>&1 | grep --line-buffered -v -E "^\s*$"
echo "== check $(date -u +%T)"
python3 scripts/gpu/check_trained.py /tmp/models/$name > "$result/check.log" 2>&1 || { tail -20 "$result/check.log"; exit 1; }
tail -5 "$result/check.log"
for f in train_log.jsonl train_summary.json loss_curve.png; do cp /tmp/models/$name/$f "$result/" 2>/dev/null || true; done
(cd /tmp/models && tar czf - "$name") | split -b 15m - "$result/$name.tgz.part-"
ls -la "$result"
echo "== done $(date -u +%T)"
