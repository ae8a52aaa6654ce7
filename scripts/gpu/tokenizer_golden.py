#!/usr/bin/env python3
"""Writes testdata/tokenizers/<name>/golden.json with the Rust `tokenizers`
library: for each text of testdata/tokenizers/texts.json the ids without and
with special tokens and the decoded texts. The Go tests (TestGoldenRust in
tokenizer/) compare against these files.

Run from the repository root on a machine with `pip install tokenizers`:
    python3 scripts/gpu/tokenizer_golden.py [name ...]
"""
import json
import os
import sys

import tokenizers
from tokenizers import Tokenizer

ROOT = os.path.join("testdata", "tokenizers")


def main(names):
    with open(os.path.join(ROOT, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)
    if not names:
        names = sorted(n for n in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, n, "tokenizer.json")))
    for name in names:
        tok = Tokenizer.from_file(os.path.join(ROOT, name, "tokenizer.json"))
        cases = []
        for text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            ids_special = tok.encode(text, add_special_tokens=True).ids
            cases.append({
                "text": text,
                "ids": ids,
                "ids_special": ids_special,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": tok.decode(ids_special, skip_special_tokens=True),
            })
        out = {"generator": f"tokenizers=={tokenizers.__version__} (scripts/gpu/tokenizer_golden.py)", "cases": cases}
        path = os.path.join(ROOT, name, "golden.json")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
            f.write("\n")
        os.replace(tmp, path)
        print(f"{name}: {len(cases)} cases -> {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
