#!/usr/bin/env python3
"""transformers baseline for `namm bench`: a random-initialised model of a
named shape in bf16 with eager attention (the engine of the reference NAMM
code), prefill N tokens in one forward, then greedy decode with its KV cache.

    python3 scripts/gpu/hf_bench.py --shape llama3-8b --context 8192 --decode 32
"""
import argparse, json, time

import torch
import transformers

SHAPES = {
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, rms_norm_eps=1e-5,
                      max_position_embeddings=32768),
    "llama15m": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=6, num_attention_heads=8,
                     num_key_value_heads=2, vocab_size=32000, rope_theta=10000.0, rms_norm_eps=1e-5,
                     max_position_embeddings=32768),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="llama3-8b")
    ap.add_argument("--context", type=int, default=8192)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--attn", default="eager")
    args = ap.parse_args()
    cfg = transformers.LlamaConfig(**SHAPES[args.shape])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation=args.attn, torch_dtype=torch.bfloat16)
    model.eval()
    ids = torch.randint(0, cfg.vocab_size, (1, args.context), device="cuda")
    res = {"shape": args.shape, "attn": args.attn, "context": args.context, "decode_tokens": args.decode,
           "gpu": torch.cuda.get_device_name(), "transformers": transformers.__version__, "torch": torch.__version__}
    for run in range(2):  # the first run warms up kernels
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model(ids, use_cache=True)
        torch.cuda.synchronize()
        pre = time.perf_counter() - t0
        past = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
        del out
        t1 = time.perf_counter()
        with torch.no_grad():
            for _ in range(args.decode):
                o = model(nxt, past_key_values=past, use_cache=True)
                past = o.past_key_values
                nxt = o.logits[:, -1:].argmax(-1)
        torch.cuda.synchronize()
        dec = time.perf_counter() - t1
        del past
        torch.cuda.empty_cache()
    res.update(prefill_seconds=pre, prefill_tokens_per_second=args.context / pre,
               decode_ms_per_token=1000 * dec / max(args.decode, 1))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
