#!/usr/bin/env python3
"""Golden parity data for the trained base models: load each trained Hugging Face directory
with transformers (float32, eager attention), compute logits on fixed prompts and greedy
continuations, and write golden.json + golden_logits.safetensors into the directory, in
exactly the format of scripts/gpu/make_fixtures.py. The Go tests in engine/parity_test.go
then checks that namm's engine gives the same logits and tokens.

    python3 scripts/gpu/check_trained.py models/model-a models/model-b

Also prints each model's greedy answer to a small needle-in-a-haystack prompt (informative).
"""
import argparse
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer

# The prompts of make_fixtures.py, plus a short retrieval prompt in the style of the tasks.
PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, in 1984, there were 3 bears and 12 emus!",
    "def add(a, b):\n    return a + b\n\n# café – naïve 北京",
]
LONG = " ".join(f"Item {i} is {'red' if i % 3 else 'blue'} and weighs {i * 7 % 13} kg." for i in range(60))
FILLER = ("It was a bright cold day in April, and the clocks were striking thirteen. The hall smelt of "
          "boiled cabbage and old rag mats. At one end of it a coloured poster, too large for indoor "
          "display, had been tacked to the wall. ")
NEEDLE = (
    "Some special magic numbers are hidden within the following text. Make sure to memorize it. "
    "I will quiz you about the numbers afterwards.\n" + FILLER * 3
    + "One of the special magic numbers for lucky-harbor is: 4827193. " + FILLER * 3
    + "\nWhat is the special magic number for lucky-harbor mentioned in the provided text? "
    "The special magic number for lucky-harbor mentioned in the provided text is"
)
GREEDY_TOKENS = 12


def load(d):
    try:
        m = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    except TypeError:
        m = transformers.AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
    return m.float().eval()


def greedy(model, ids, n, device):
    """n greedy tokens by full forward passes (no cache, no generate() options to get wrong)."""
    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([seq], device=device)).logits[0, -1].float()
            seq.append(int(logits.argmax()))
    return seq[len(ids):]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", help="trained model directories")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    # Exact float32 matmuls: the Go engine computes in float32.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    failed = False
    for d in args.dirs:
        cfg = json.load(open(os.path.join(d, "config.json")))
        tcfg_path = os.path.join(d, "tokenizer_config.json")
        tcfg = json.load(open(tcfg_path)) if os.path.exists(tcfg_path) else {}
        add_bos = bool(tcfg.get("add_bos_token", False))
        bos = cfg.get("bos_token_id")
        if isinstance(bos, list):
            bos = bos[0]
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        model = load(d).to(device)
        golden = {"transformers": transformers.__version__, "torch": torch.__version__, "prompts": []}
        tensors = {}
        for i, text in enumerate(PROMPTS + [LONG, NEEDLE]):
            ids = tok.encode(text, add_special_tokens=False).ids
            if add_bos and bos is not None:
                ids = [bos] + ids
            with torch.no_grad():
                logits = model(torch.tensor([ids], device=device)).logits[0].float().cpu()
            cont = greedy(model, ids, GREEDY_TOKENS, device)
            tensors[f"last_{i}"] = logits[-1].contiguous()
            tensors[f"cols_{i}"] = logits[:, :256].contiguous()
            tensors[f"argmax_{i}"] = logits.argmax(-1).to(torch.int64).contiguous()
            golden["prompts"].append({"text": text, "ids": ids, "greedy": cont,
                                      "greedy_text": tok.decode(cont, skip_special_tokens=False)})
        save_file(tensors, os.path.join(d, "golden_logits.safetensors"))
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump(golden, f, indent=1, ensure_ascii=False)
        needle = golden["prompts"][-1]
        print(f"{d}: {sum(p.numel() for p in model.parameters())} parameters; needle prompt "
              f"({len(needle['ids'])} tokens) -> {needle['greedy_text']!r}"
              f"{' (correct)' if '4827193' in needle['greedy_text'] else ''}")
        # The tokenizer through transformers, as users will load it (informative only).
        try:
            at = transformers.AutoTokenizer.from_pretrained(d)
            got = at(PROMPTS[0])["input_ids"]
            want = golden["prompts"][0]["ids"]
            print(f"  AutoTokenizer: {type(at).__name__}, ids {'match' if got == want else 'DIFFER: ' + str(got[:8])}")
        except Exception as e:
            print(f"  AutoTokenizer failed: {type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
