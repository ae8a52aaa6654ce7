#!/usr/bin/env python3
"""Writes the tiny Llama-3-style and Qwen2-style byte-level BPE fixtures.

Their vocabulary is the 256 GPT-2 byte tokens plus the results of the first
N_MERGES merges of gpt2/tokenizer.json (so every merge is consistent), plus a
few whole words no merge can build, which only ignore_merges reaches.
Run from the repository root: python3 testdata/tokenizers/make_tiny.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
N_MERGES = 3000
WHOLE_WORDS = ["Ġtokenizer", "Ġ1234", "ĠÃ©tÃ©"]  # " tokenizer", " 1234", " été"

LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def base_vocab():
    with open(os.path.join(HERE, "gpt2", "tokenizer.json"), encoding="utf-8") as f:
        gpt2 = json.load(f)["model"]
    vocab = {tok: i for tok, i in gpt2["vocab"].items() if i < 256}
    merges = []
    for m in gpt2["merges"][:N_MERGES]:
        a, b = m.split(" ")
        merges.append([a, b])
        vocab.setdefault(a + b, len(vocab))
    for w in WHOLE_WORDS:
        vocab.setdefault(w, len(vocab))
    return vocab, merges


def added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}


def byte_level(**kw):
    d = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    d.update(kw)
    return d


def write(name, tok):
    os.makedirs(os.path.join(HERE, name), exist_ok=True)
    with open(os.path.join(HERE, name, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=2)
        f.write("\n")


def main():
    vocab, merges = base_vocab()
    n = len(vocab)
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
             "vocab": vocab, "merges": merges}
    llama3 = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(n, "<|begin_of_text|>"), added(n + 1, "<|end_of_text|>"), added(n + 2, "<|eot_id|>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": False},
            byte_level()]},
        "post_processor": {"type": "Sequence", "processors": [
            byte_level(trim_offsets=False),
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [n], "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": byte_level(),
        "model": dict(model, ignore_merges=True),
    }
    write("llama3-tiny", llama3)
    qwen2 = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(n, "<|endoftext|>"), added(n + 1, "<|im_start|>"), added(n + 2, "<|im_end|>")],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
            byte_level()]},
        "post_processor": byte_level(trim_offsets=False),
        "decoder": byte_level(),
        "model": dict(model, merges=[" ".join(m) for m in merges], ignore_merges=False),
    }
    write("qwen2-tiny", qwen2)


if __name__ == "__main__":
    main()
