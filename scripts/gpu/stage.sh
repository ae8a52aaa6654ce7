#!/usr/bin/env bash
# Packs what the GPU machine needs (it has no Go toolchain; at most 64 MiB travel with the tree).
#
# Usage (repository root, here): bash scripts/gpu/stage.sh pack|pack-rev REV NAME|out|in
#   pack          .gpu/namm.xz (go build -tags "nojapanese noembedmodel"), the XLA test binaries
#                 .gpu/engine_xla.test.xz and .gpu/namm_xla.test.xz (scripts/gpu/xla_test.sh),
#                 and the models .gpu/model-a.tgz, .gpu/model-b.tgz, .gpu/model-c.tgz
#   pack-rev      .gpu/NAME.xz, namm built from commit REV (git archive into a temporary
#                 directory), to compare two builds in one command: BINS="namm NAME" bench.sh ...
#   out / in      move the big tracked files the device does not need (the models' weights,
#                 which travel as .gpu/model-*.tgz, and testdata/) to /tmp/aside and back
# .gpu/ is not tracked: name what a device command needs in its carry list. The device scripts
# unpack .gpu/NAME.xz to /tmp/NAME (scripts/gpu/lib.sh).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
aside=/tmp/aside
# The device needs none of these: models travel as .gpu/*.tgz, the binary embeds the haystack
# texts, and it is built here (third_party is source).
big=(defaultmodel/model-a models testdata third_party task/gen/haystack/texts task/metric/internal/jieba/data)
case "${1:-}" in
pack)
  mkdir -p .gpu
  go build -tags "nojapanese noembedmodel" -ldflags="-s -w" -o .gpu/namm ./cmd/namm
  xz -T2 -6 -f .gpu/namm
  go test -tags "namm_xla nojapanese noembedmodel" -c -o .gpu/engine_xla.test ./engine
  go test -tags "namm_xla nojapanese noembedmodel" -c -o .gpu/namm_xla.test ./namm
  xz -T2 -6 -f .gpu/engine_xla.test .gpu/namm_xla.test
  for m in defaultmodel/model-a models/model-b models/model-c; do
    [ -d $m ] || continue
    n=$(basename $m)
    [ -f $m/model.safetensors ] || { echo "$m/model.safetensors missing (staged out?)"; exit 1; }
    tar cf - -C "$(dirname $m)" --exclude golden_logits.safetensors --exclude golden.json --exclude train_log.jsonl "$n" | gzip -6 > .gpu/$n.tgz
  done
  ls -la .gpu ;;
pack-rev)
  rev=${2:?usage: stage.sh pack-rev REV NAME}; name=${3:?usage: stage.sh pack-rev REV NAME}
  src=$(mktemp -d); trap 'rm -rf "$src"' EXIT
  git archive "$rev" | tar xf - -C "$src"
  mkdir -p .gpu
  (cd "$src" && go build -tags "nojapanese noembedmodel" -ldflags="-s -w" -o "$OLDPWD/.gpu/$name" ./cmd/namm)
  xz -T2 -6 -f ".gpu/$name"; ls -la ".gpu/$name.xz" ;;
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
*) echo "usage: stage.sh pack|pack-rev REV NAME|out|in"; exit 2 ;;
esac
