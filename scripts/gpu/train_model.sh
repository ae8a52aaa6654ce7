#!/usr/bin/env bash
# Train one base model on the device machine and pack it for the trip back.
# Usage: bash scripts/gpu/train_model.sh a|b MINUTES OUTDIR
# Expects .gpu/namm.gz (go build -tags nojapanese -ldflags="-s -w" ./cmd/namm, gzipped)
# and .gpu/extra-texts.tgz (public-domain training-only texts, see docs/models.md).
set -euo pipefail
which=$1; minutes=$2; out=$3
mkdir -p /tmp/data /tmp/models "$out"
gunzip -c .gpu/namm.gz > /tmp/namm && chmod +x /tmp/namm
tar xzf .gpu/extra-texts.tgz -C /tmp
case $which in
  a) tok=testdata/tokenizers/mistral-7b; seed=0 ;;
  b) tok=testdata/tokenizers/gpt2; seed=1 ;;
esac
/tmp/namm train-data --tokenizer "$tok" --out /tmp/data/$which.bin --tokens 150000000 --seq-len 4096 \
  --seed $seed --text-dir /tmp/extra --synthetic-frac ${SYNTH:-0.7} 2>&1 | tail -3
python3 scripts/gpu/train_base.py --config configs/model-$which.json --data /tmp/data/$which.bin \
  --out /tmp/models/model-$which --max-minutes "$minutes" 2>&1 | tail -25
python3 scripts/gpu/check_trained.py /tmp/models/model-$which 2>&1 | tail -5
cp /tmp/models/model-$which/train_log.jsonl /tmp/models/model-$which/train_summary.json "$out"/ 2>/dev/null || true
cp /tmp/models/model-$which/loss_curve.png "$out"/ 2>/dev/null || true
(cd /tmp/models && tar czf - model-$which) | split -b 15m - "$out/model-$which.tgz.part-"
ls -la "$out"
