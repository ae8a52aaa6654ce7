#!/usr/bin/env bash
# Keeps what travels to the device machine under its 64 MiB: `stage.sh out`
# moves the big tracked files the device does not need (the models' weights,
# which travel as .gpu/model-*.tgz, and testdata/) to /tmp/aside; `stage.sh in`
# puts them back. Then it packs the binary and the models for carrying:
#   .gpu/namm.xz (go build -tags "nojapanese noembedmodel"), .gpu/model-a.tgz, .gpu/model-b.tgz
# On the device: python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.gpu/namm.xz'),open('/tmp/namm','wb'))"
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
aside=/tmp/aside
big=(defaultmodel/model-a/model.safetensors models/model-b/model.safetensors testdata)
case "${1:-}" in
pack)
  mkdir -p .gpu
  go build -tags "nojapanese noembedmodel" -ldflags="-s -w" -o .gpu/namm ./cmd/namm
  xz -T2 -6 -f .gpu/namm
  for m in defaultmodel/model-a models/model-b; do
    n=$(basename $m)
    [ -f $m/model.safetensors ] || { echo "$m/model.safetensors missing (staged out?)"; exit 1; }
    tar cf - -C "$(dirname $m)" --exclude golden_logits.safetensors --exclude golden.json --exclude train_log.jsonl "$n" | gzip -6 > .gpu/$n.tgz
  done
  ls -la .gpu ;;
out)
  mkdir -p $aside
  for p in "${big[@]}"; do
    [ -e "$p" ] || continue
    # mv onto an existing directory would nest it (aside/testdata/testdata), and a later
    # `in` would bring back the nested copy: refuse instead.
    if [ -e "$aside/$p" ]; then echo "stage.sh: $aside/$p exists (staged out before?); leaving $p in place"; continue; fi
    mkdir -p "$aside/$(dirname "$p")"; mv "$p" "$aside/$p"
  done ;;
in)
  for p in "${big[@]}"; do
    [ -e "$aside/$p" ] || continue
    # mv into an existing directory would nest it (testdata/testdata): refuse instead.
    if [ -e "$p" ]; then echo "stage.sh: $p exists; put $aside/$p back by hand"; continue; fi
    mkdir -p "$(dirname "$p")"; mv "$aside/$p" "$p"
  done
  git status --short | grep -v '^??' || true ;;
*) echo "usage: stage.sh pack|out|in"; exit 2 ;;
esac
