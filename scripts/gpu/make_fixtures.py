#!/usr/bin/env python3
"""Make the golden parity fixtures: tiny random-initialised Llama, Mistral and
Qwen2 models saved as complete Hugging Face directories, with transformers'
logits, greedy continuations and token ids on fixed prompts.

Run on a machine with torch, transformers and tokenizers (the GPU machine):
    python3 scripts/gpu/make_fixtures.py --out testdata/models
The Go tests in engine/ compare against what this writes.
"""
import argparse, json, os, shutil

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer

PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, in 1984, there were 3 bears and 12 emus!",
    "def add(a, b):\n    return a + b\n\n# café – naïve 北京",
]
# A long prompt exercises chunked prefill (> 128 tokens) and the sliding window.
LONG = " ".join(f"Item {i} is {'red' if i % 3 else 'blue'} and weighs {i * 7 % 13} kg." for i in range(60))

MODELS = {
    # name: (config kwargs, tokenizer dir, save dtype, bos)
    "tiny-llama": (dict(model_type="llama", hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
                        rope_theta=500000.0, max_position_embeddings=4096, tie_word_embeddings=False,
                        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
                   "mistral", torch.float32, True),
    "tiny-mistral": (dict(model_type="mistral", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=1, head_dim=8, rms_norm_eps=1e-6,
                          rope_theta=10000.0, max_position_embeddings=4096, tie_word_embeddings=True,
                          sliding_window=48),
                     "mistral", torch.float16, True),
    "tiny-qwen2": (dict(model_type="qwen2", hidden_size=32, intermediate_size=96, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                        rope_theta=1000000.0, max_position_embeddings=4096, tie_word_embeddings=True,
                        use_sliding_window=False),
                   "gpt2", torch.bfloat16, False),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="testdata/models")
    ap.add_argument("--tokenizers", default="testdata/tokenizers")
    args = ap.parse_args()
    torch.manual_seed(1234)
    gpt2 = os.path.join(args.tokenizers, "gpt2")
    if os.path.exists(os.path.join(gpt2, "encoder.json")):
        # Build GPT-2's tokenizer.json from encoder.json + vocab.bpe with the
        # tokenizers library, in the layout of Hugging Face's gpt2 repository.
        from tokenizers import Tokenizer as T, models, pre_tokenizers, decoders, processors, AddedToken
        t = T(models.BPE.from_file(os.path.join(gpt2, "encoder.json"), os.path.join(gpt2, "vocab.bpe")))
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        t.decoder = decoders.ByteLevel()
        t.post_processor = processors.ByteLevel(trim_offsets=False)
        t.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
        t.save(os.path.join(gpt2, "tokenizer.json"))
        os.makedirs(os.path.join(args.out, "tokenizers-gpt2"), exist_ok=True)
        shutil.copy(os.path.join(gpt2, "tokenizer.json"), os.path.join(args.out, "tokenizers-gpt2", "tokenizer.json"))
    for name, (kw, tokname, save_dtype, bos) in MODELS.items():
        out = os.path.join(args.out, name)
        os.makedirs(out, exist_ok=True)
        tok = Tokenizer.from_file(os.path.join(args.tokenizers, tokname, "tokenizer.json"))
        vocab = tok.get_vocab_size()
        kw = dict(kw)
        mt = kw.pop("model_type")
        kw["vocab_size"] = vocab
        kw["initializer_range"] = 0.3  # spread logits so greedy choices are robust
        kw["bos_token_id"] = 1 if bos else None
        kw["eos_token_id"] = 2 if bos else 50256
        cfg = transformers.AutoConfig.for_model(mt, **kw)
        cfg._attn_implementation = "eager"
        model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
        model.eval()
        # Round weights to the saved dtype so the f32 reference sees exactly what is stored.
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(save_dtype).float())
        model.config.torch_dtype = str(save_dtype).replace("torch.", "")
        model.save_pretrained(out, safe_serialization=True)
        if save_dtype != torch.float32:
            # Re-save the weights in the small dtype (save_pretrained keeps f32).
            from safetensors.torch import load_file
            path = os.path.join(out, "model.safetensors")
            sd = load_file(path)
            save_file({k: v.to(save_dtype).contiguous() for k, v in sd.items()}, path, metadata={"format": "pt"})
        shutil.copy(os.path.join(args.tokenizers, tokname, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
        tc = {"add_bos_token": bos, "add_eos_token": False,
              "bos_token": "<s>" if bos else None, "eos_token": "</s>" if bos else "<|endoftext|>",
              "model_max_length": 4096}
        with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
            json.dump(tc, f, indent=1)

        golden = {"transformers": transformers.__version__, "torch": torch.__version__, "prompts": []}
        tensors = {}
        for i, text in enumerate(PROMPTS + [LONG]):
            ids = tok.encode(text, add_special_tokens=False).ids
            if bos:
                ids = [1] + ids
            x = torch.tensor([ids])
            with torch.no_grad():
                logits = model(x).logits[0].float()
                gen = model.generate(x, max_new_tokens=12, do_sample=False, eos_token_id=None,
                                     pad_token_id=0, attention_mask=torch.ones_like(x))
            cont = gen[0, len(ids):].tolist()
            # Full logits of every position would be megabytes: keep the last
            # position whole, the first 256 vocabulary columns of every
            # position, and every position's argmax.
            tensors[f"last_{i}"] = logits[-1].contiguous()
            tensors[f"cols_{i}"] = logits[:, :256].contiguous()
            tensors[f"argmax_{i}"] = logits.argmax(-1).to(torch.int64).contiguous()
            golden["prompts"].append({"text": text, "ids": ids, "greedy": cont,
                                      "greedy_text": tok.decode(cont, skip_special_tokens=False)})
        save_file(tensors, os.path.join(out, "golden_logits.safetensors"))
        with open(os.path.join(out, "golden.json"), "w") as f:
            json.dump(golden, f, indent=1, ensure_ascii=False)
        print(name, "written", sum(p.numel() for p in model.parameters()), "params")


if __name__ == "__main__":
    main()
