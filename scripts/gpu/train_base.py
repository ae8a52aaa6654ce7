#!/usr/bin/env python3
"""Train one of the project's small base language models on one GPU with PyTorch.

Reads a namm token file (written by `namm train-data`, layout in train/tokenfile.go) and a JSON
config (configs/model-a.json, configs/model-b.json), trains a transformers LlamaForCausalLM or
Qwen2ForCausalLM from scratch within a wall-clock budget, and writes a complete Hugging Face
directory that transformers and namm's engine both load:

    python3 scripts/gpu/train_base.py --config configs/model-a.json \
        --data data/a.bin --out models/model-a --max-minutes 7

AdamW (betas and weight decay from the config, no decay on norms and biases), linear warm-up
then cosine to min_lr_frac of the peak, bf16 autocast, optional torch.compile (falls back to
eager on failure), gradient clipping, periodic validation perplexity, checkpoints with exact
resume (--resume: model, optimizer, schedule, RNG states, data position), a JSONL log and a
loss-curve PNG (when matplotlib is installed).

The schedule length is fixed once: --steps if given, else estimated from the speed of the
first steps after compilation and the time budget, capped by train.max_steps. It is stored in
the checkpoint, so a resumed run follows the same schedule.
"""
import argparse
import json
import math
import os
import random
import shutil
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import transformers

T0 = time.time()
MAGIC = b"NAMMTOKS"
HEADER = 64


def log(*a):
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)


# ----------------------------------------------------------------------------------------------
# Data


class TokenFile:
    """A namm token file: [count, seq_len] tokens after a 64-byte header, memory-mapped."""

    def __init__(self, path):
        with open(path, "rb") as f:
            hdr = f.read(HEADER)
        if len(hdr) < HEADER or hdr[:8] != MAGIC:
            raise SystemExit(f"{path}: not a namm token file (magic {hdr[:8]!r})")
        magic, ver, vocab, seq_len, width, count, bos, eos = struct.unpack("<8sIIIIQii", hdr[:40])
        if ver != 1:
            raise SystemExit(f"{path}: token file version {ver}, want 1")
        if width not in (2, 4):
            raise SystemExit(f"{path}: token width {width}, want 2 or 4")
        size = os.path.getsize(path)
        want = HEADER + count * seq_len * width
        if size != want:
            raise SystemExit(f"{path}: {size} bytes, header implies {want}")
        self.path, self.vocab, self.seq_len, self.count, self.bos, self.eos = path, vocab, seq_len, count, bos, eos
        dtype = np.uint16 if width == 2 else np.uint32
        self.tokens = np.memmap(path, dtype=dtype, mode="r", offset=HEADER, shape=(count, seq_len))
        # Optional token roles (0 text, 1 task prompt, 2 task answer) written by namm train-data.
        self.roles = None
        if os.path.exists(path + ".roles") and os.path.getsize(path + ".roles") == count * seq_len:
            self.roles = np.memmap(path + ".roles", dtype=np.uint8, mode="r", shape=(count, seq_len))

    def view(self, seq_len):
        """Rows of seq_len tokens (seq_len must divide the file's sequence length)."""
        if seq_len == self.seq_len:
            return self.tokens
        if seq_len > self.seq_len or self.seq_len % seq_len:
            raise SystemExit(f"{self.path}: train.seq_len {seq_len} must divide the file's {self.seq_len}")
        return self.tokens.reshape(self.count * (self.seq_len // seq_len), seq_len)


class Batches:
    """Deterministic batches: each epoch is a permutation of the rows seeded by (seed, epoch).
    The position (epoch, index) is all the state a resume needs."""

    def __init__(self, rows, batch, seed, roles=None):
        self.rows, self.batch, self.seed, self.roles = rows, batch, seed, roles
        self.last_roles = None
        self.epoch, self.index = 0, 0
        self._perm_epoch, self._perm = -1, None

    def perm(self):
        if self._perm_epoch != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._perm, self._perm_epoch = rng.permutation(len(self.rows)), self.epoch
        return self._perm

    def next(self):
        idx = []
        while len(idx) < self.batch:
            p = self.perm()
            take = min(self.batch - len(idx), len(p) - self.index)
            idx.extend(p[self.index:self.index + take].tolist())
            self.index += take
            if self.index >= len(p):
                self.epoch, self.index = self.epoch + 1, 0
        if self.roles is not None:
            self.last_roles = np.stack([np.asarray(self.roles[i], dtype=np.int64) for i in idx])
        return np.stack([np.asarray(self.rows[i], dtype=np.int64) for i in idx])

    def state(self):
        return {"epoch": self.epoch, "index": self.index}

    def load(self, s):
        self.epoch, self.index = int(s["epoch"]), int(s["index"])


def to_xy(batch, device):
    """Inputs are the whole rows; targets are the rows shifted left, the last position ignored,
    so every tensor keeps the (power-of-two) sequence length."""
    x = torch.from_numpy(batch).to(device, non_blocking=True)
    y = torch.full_like(x, -100)
    y[:, :-1] = x[:, 1:]
    return x, y


# ----------------------------------------------------------------------------------------------
# Model


class LossModel(torch.nn.Module):
    """Causal-LM loss from the decoder's hidden states and the LM head (float32 logits)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, x, y, w=None):
        h = self.lm.model(input_ids=x, use_cache=False).last_hidden_state
        logits = self.lm.lm_head(h).float()
        if w is None:
            return F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-100)
        # Weighted mean: the answers of task examples are a tiny share of the tokens but carry
        # the retrieval signal, so they are up-weighted (see train/data.go Role*).
        ce = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-100, reduction="none")
        w = w.view(-1) * (y.view(-1) != -100)
        return (ce * w).sum() / w.sum().clamp_min(1.0)


def build_model(mcfg):
    kw = dict(mcfg)
    model_type = kw.pop("model_type")
    cfg = transformers.AutoConfig.for_model(model_type, **kw)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa")
    return model.float()


def check_engine_config(cfg, path):
    """The checks of namm's model.ParseConfig (model/config.go), so a config the engine would
    refuse fails here, before any training."""
    mt = cfg.get("model_type")
    if mt not in ("llama", "mistral", "qwen2"):
        raise SystemExit(f"{path}: model_type {mt!r} is not supported by the engine (llama, mistral, qwen2)")
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        if not isinstance(cfg.get(k), int) or cfg[k] <= 0:
            raise SystemExit(f"{path}: field {k} must be a positive integer, got {cfg.get(k)!r}")
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    if nh % nkv:
        raise SystemExit(f"{path}: num_key_value_heads {nkv} must divide num_attention_heads {nh}")
    hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
    if hd % 2:
        raise SystemExit(f"{path}: head_dim {hd} must be even")
    if cfg.get("hidden_act", "silu") != "silu":
        raise SystemExit(f"{path}: hidden_act must be silu")
    rp = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if rp.get("rope_type", rp.get("type", "default")) not in ("default", "linear", "llama3", "ntk", None):
        raise SystemExit(f"{path}: rope type {rp!r} is not supported by the engine")


# ----------------------------------------------------------------------------------------------
# Schedule


def lr_at(step, peak, warmup, planned, min_frac):
    if step < warmup:
        return peak * (step + 1) / warmup
    if planned is None:
        return peak
    t = min(1.0, (step - warmup) / max(1, planned - warmup))
    return peak * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * t)))


# ----------------------------------------------------------------------------------------------
# Checkpoints


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_state():
    s = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s):
    random.setstate(s["python"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


# ----------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate(loss_model, rows, n, micro, device, amp):
    """Mean token loss over n rows spread evenly through the file (the validation file is in
    corpus order: its first rows are one source's); all rows when n >= len(rows)."""
    loss_model.eval()
    n = min(n, len(rows))
    pick = np.linspace(0, len(rows) - 1, n).round().astype(np.int64) if n < len(rows) else np.arange(len(rows))
    total, count = 0.0, 0
    for i in range(0, n, micro):
        x, y = to_xy(np.asarray(rows[pick[i:min(n, i + micro)]], dtype=np.int64), device)
        with amp():
            loss = loss_model(x, y)
        k = int((y != -100).sum())
        total += float(loss) * k
        count += k
    loss_model.train()
    return total / max(1, count)


# ----------------------------------------------------------------------------------------------
# Output


def write_hf_dir(model, cfg_json, out, tok_dir, tied):
    """model.safetensors (bfloat16), config.json, generation_config.json, tokenizer files."""
    from safetensors.torch import save_file

    os.makedirs(out, exist_ok=True)
    sd = {}
    for k, v in model.state_dict().items():
        if tied and k == "lm_head.weight":
            continue  # tie_word_embeddings: the engine and transformers reuse the embedding
        sd[k] = v.detach().to(torch.bfloat16).cpu().contiguous()
    tmp = os.path.join(out, ".model.safetensors.tmp")
    save_file(sd, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(out, "model.safetensors"))

    model.config.architectures = [model.__class__.__name__]
    model.config.save_pretrained(out)
    path = os.path.join(out, "config.json")
    with open(path) as f:
        c = json.load(f)
    c["dtype"] = "bfloat16"
    c.pop("torch_dtype", None)
    c["use_cache"] = True
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
    check_engine_config(c, path)

    gen = transformers.GenerationConfig(bos_token_id=c.get("bos_token_id"), eos_token_id=c.get("eos_token_id"),
                                        pad_token_id=c.get("eos_token_id"))
    gen.save_pretrained(out)

    shutil.copy(os.path.join(tok_dir, "tokenizer.json"), os.path.join(out, "tokenizer.json"))
    tc = {}
    src = os.path.join(tok_dir, "tokenizer_config.json")
    if os.path.exists(src):
        with open(src) as f:
            tc = json.load(f)
    tc.update(cfg_json.get("tokenizer_config", {}))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)
    return sum(v.numel() for v in sd.values())


def plot(log_path, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # matplotlib is optional
        log(f"no loss curve: matplotlib unavailable ({e})")
        return
    tr, va, fin = [], [], None
    with open(log_path) as f:
        for line in f:
            r = json.loads(line)
            if "loss" in r:
                tr.append((r["tokens"], r["loss"]))
            if "val_loss" in r and not r.get("final"):
                va.append((r["tokens"], r["val_loss"]))
            if r.get("final"):
                fin = (r["tokens"], r["val_loss"], r.get("sequences"))
    if not tr:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot([t for t, _ in tr], [l for _, l in tr], lw=0.8, label="train loss")
    if va:
        ax.plot([t for t, _ in va], [l for _, l in va], "o-", label="validation loss (the same spread subset)")
    if fin:
        ax.plot([fin[0]], [fin[1]], "s", color="black", label=f"validation loss, all {fin[2] or ''} sequences (end)")
    ax.set_xlabel("tokens")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png + ".tmp.png", dpi=120)
    os.replace(png + ".tmp.png", png)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------


def init_weights(model, src, tied):
    """Copies model.safetensors of src into model; every tensor must exist with the same shape
    (the LM head may be absent when it is the tied embedding)."""
    from safetensors.torch import load_file
    path = os.path.join(src, "model.safetensors")
    sd = load_file(path)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not (tied and k == "lm_head.weight")]
    extra = [k for k in sd if k not in own]
    bad = [f"{k} {tuple(sd[k].shape)} != {tuple(own[k].shape)}" for k in sd if k in own and sd[k].shape != own[k].shape]
    if missing or extra or bad:
        raise SystemExit(f"{path}: does not fit the model (missing {missing[:4]}, unexpected {extra[:4]}, shapes {bad[:4]})")
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v.to(own[k].dtype))
    log(f"initialised from {path}: {len(sd)} tensors")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True, help="training token file from namm train-data")
    ap.add_argument("--val", help="validation token file (default: DATA with .val before the extension)")
    ap.add_argument("--out", required=True, help="output directory: the Hugging Face model, train_summary.json, "
                    "train_log.jsonl, loss_curve.png")
    ap.add_argument("--ckpt-dir", help="checkpoint directory (default: OUT.ckpt, kept out of the model directory)")
    ap.add_argument("--max-minutes", type=float, default=7.0, help="wall-clock budget of this run, start-up included")
    ap.add_argument("--reserve-seconds", type=float, default=40.0, help="budget kept for the final evaluation and save")
    ap.add_argument("--steps", type=int, help="schedule length in optimizer steps (default: estimated from the budget)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--answer-weight", type=float, default=30.0, help="loss weight of task answer tokens (needs DATA.roles)")
    ap.add_argument("--prompt-weight", type=float, default=0.5, help="loss weight of task prompt tokens (needs DATA.roles)")
    ap.add_argument("--init", help="start from the weights of this model directory (model.safetensors of the same "
                    "shapes): a shorter-context model to extend; ignored when --resume finds a checkpoint")
    ap.add_argument("--lr", type=float, help="peak learning rate (default: the config's train.lr)")
    ap.add_argument("--tokenizer", help="tokenizer directory written into the model (default: the config's \"tokenizer\")")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    with open(args.config) as f:
        cj = json.load(f)
    tc = cj["train"]
    if args.lr:
        tc["lr"] = args.lr
    os.makedirs(args.out, exist_ok=True)
    ckpt_dir = args.ckpt_dir or args.out.rstrip("/") + ".ckpt"
    os.makedirs(ckpt_dir, exist_ok=True)
    ckpt_path = os.path.join(ckpt_dir, "checkpoint.pt")
    log_path = os.path.join(args.out, "train_log.jsonl")
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    gpu = torch.cuda.get_device_name(device) if cuda else "cpu"
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, device {gpu}")

    seed = int(tc.get("seed", 1234))
    random.seed(seed)
    torch.manual_seed(seed)

    data = TokenFile(args.data)
    val_path = args.val or (os.path.splitext(args.data)[0] + ".val" + os.path.splitext(args.data)[1])
    val = TokenFile(val_path) if os.path.exists(val_path) else None
    if val is None:
        log(f"no validation file {val_path}: no perplexity")
    mcfg = cj["model"]
    if data.vocab > mcfg["vocab_size"]:
        raise SystemExit(f"{args.data}: vocabulary {data.vocab} exceeds the model's vocab_size {mcfg['vocab_size']}")
    seq_len = int(tc.get("seq_len", data.seq_len))
    rows = data.view(seq_len)
    val_rows = val.view(seq_len) if val is not None else None
    micro, accum = int(tc["micro_batch_size"]), int(tc.get("grad_accum", 1))
    tokens_per_step = micro * accum * seq_len
    log(f"data {args.data}: {len(rows)} rows x {seq_len} tokens ({len(rows) * seq_len / 1e6:.1f}M tokens); "
        f"{tokens_per_step} tokens per step")

    model = build_model(mcfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.get_input_embeddings().weight.numel()
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    if tied != bool(mcfg.get("tie_word_embeddings", False)):
        raise SystemExit(f"{args.config}: tie_word_embeddings is {mcfg.get('tie_word_embeddings')} but the built model's "
                         f"LM head {'is' if tied else 'is not'} the embedding")
    check_engine_config(model.config.to_dict(), args.config)
    log(f"{mcfg['model_type']}: {n_params / 1e6:.2f}M parameters ({(n_params - n_embed) / 1e6:.2f}M without the embedding), tied={tied}")

    if args.init and not (args.resume and os.path.exists(ckpt_path)):
        init_weights(model, args.init, tied)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt_kw = dict(lr=float(tc["lr"]), betas=tuple(tc.get("betas", (0.9, 0.95))), eps=1e-8)
    groups = [{"params": decay, "weight_decay": float(tc.get("weight_decay", 0.1))},
              {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, fused=cuda, **opt_kw)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(groups, **opt_kw)

    roles = None
    if data.roles is not None and seq_len == data.seq_len:
        roles = data.roles
        log(f"token roles found: answer weight {args.answer_weight}, prompt weight {args.prompt_weight}")
    batches = Batches(rows, micro * accum, seed, roles)
    step, tokens_seen, train_seconds, planned = 0, 0, 0.0, args.steps
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        batches.load(ck["data"])
        set_rng_state(ck["rng"])
        step, tokens_seen, train_seconds = ck["step"], ck["tokens_seen"], ck["train_seconds"]
        planned = ck["planned_steps"] if args.steps is None else args.steps
        log(f"resumed from {ckpt_path} at step {step} ({tokens_seen / 1e6:.1f}M tokens), schedule {planned} steps")
    elif os.path.exists(log_path):
        os.remove(log_path)  # a fresh run starts a fresh log

    loss_model = LossModel(model)
    train_fn = loss_model
    use_compile = bool(tc.get("compile", True)) and not args.no_compile and cuda
    if use_compile:
        try:
            train_fn = torch.compile(loss_model)
        except Exception as e:
            log(f"torch.compile unavailable ({e}); eager")
            train_fn, use_compile = loss_model, False

    def amp():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    peak, warmup = float(tc["lr"]), int(tc.get("warmup_steps", 100))
    min_frac, max_steps = float(tc.get("min_lr_frac", 0.1)), int(tc.get("max_steps", 10 ** 9))
    clip = float(tc.get("grad_clip", 1.0))
    log_every, eval_every = int(tc.get("log_every", 10)), int(tc.get("eval_every", 250))
    eval_seqs = int(tc.get("eval_seqs", 16))
    ckpt_every = float(tc.get("checkpoint_minutes", 2.0)) * 60
    budget = args.max_minutes * 60
    logf = open(log_path, "a")

    def write_log(rec):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()

    def checkpoint():
        save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "data": batches.state(),
                     "rng": rng_state(), "step": step, "tokens_seen": tokens_seen,
                     "train_seconds": train_seconds, "planned_steps": planned, "config": cj}, ckpt_path)

    def one_step(fn):
        """One optimizer step of accum micro-batches; returns (mean loss, grad norm)."""
        opt.zero_grad(set_to_none=True)
        batch = batches.next()
        total = torch.zeros((), device=device)
        roles = batches.last_roles
        for a in range(accum):
            x, y = to_xy(batch[a * micro:(a + 1) * micro], device)
            w = None
            if roles is not None:
                r = torch.from_numpy(roles[a * micro:(a + 1) * micro]).to(device)
                w = torch.ones(x.shape, dtype=torch.float32, device=device)
                tr = r[:, 1:]  # the role of each target token
                ww = torch.ones(tr.shape, dtype=torch.float32, device=device)
                ww[tr == 1] = args.prompt_weight
                ww[tr == 2] = args.answer_weight
                w[:, :-1] = ww
            with amp():
                loss = fn(x, y, w)
            (loss / accum).backward()
            total += loss.detach()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return total / accum, norm

    model.train()
    last_ckpt = time.time()
    calib_start, calib_from = None, None
    recent = []
    step_time = None
    stopped = "budget"
    while True:
        if planned is not None and step >= min(planned, max_steps):
            stopped = "schedule"
            break
        if step >= max_steps:
            stopped = "max_steps"
            break
        elapsed = time.time() - T0
        if elapsed + (step_time or 0) > budget - args.reserve_seconds:
            break
        lr = lr_at(step, peak, warmup, planned, min_frac)
        for g in opt.param_groups:
            g["lr"] = lr
        t = time.time()
        state = batches.state()
        try:
            loss, norm = one_step(train_fn)
        except Exception as e:
            if train_fn is loss_model:
                raise
            # torch.compile failed at its first call: restore the data position and go eager.
            log(f"torch.compile failed ({type(e).__name__}: {str(e)[:300]}); continuing eager")
            train_fn, use_compile = loss_model, False
            batches.load(state)
            loss, norm = one_step(train_fn)
        step += 1
        tokens_seen += tokens_per_step
        loss_v = float(loss)  # synchronises
        dt = time.time() - t
        train_seconds += dt
        if not math.isfinite(loss_v):
            raise SystemExit(f"step {step}: loss is {loss_v}; lower train.lr")
        recent = (recent + [loss_v])[-50:]
        # Schedule length from the speed of steps 6-25 of this run (after compilation).
        if planned is None:
            if calib_from is None and step >= 5:
                calib_from, calib_start = step, time.time()
            elif calib_from is not None and step - calib_from >= 20:
                step_time = (time.time() - calib_start) / (step - calib_from)
                evals = 1 + 1 / max(1, eval_every)  # rough cost of periodic evaluation
                left = budget - args.reserve_seconds - (time.time() - T0)
                planned = min(max_steps, step + int(0.97 * left / (step_time * evals)))
                planned = max(planned, step + 1)
                log(f"{step_time * 1000:.0f} ms/step, {tokens_per_step / step_time / 1e3:.0f}k tokens/s: "
                    f"schedule of {planned} steps ({planned * tokens_per_step / 1e6:.0f}M tokens)")
        elif step_time is None and step >= 25:
            step_time = train_seconds / max(1, step)
        if step % log_every == 0 or step == 1:
            rec = {"step": step, "tokens": tokens_seen, "loss": loss_v, "lr": lr, "grad_norm": float(norm),
                   "ms_per_step": dt * 1000, "elapsed": time.time() - T0, "epoch": batches.epoch}
            write_log(rec)
            log(f"step {step}/{planned or '?'} loss {loss_v:.4f} lr {lr:.2e} |g| {float(norm):.2f} "
                f"{dt * 1000:.0f} ms {tokens_per_step / dt / 1e3:.0f}k tok/s epoch {batches.epoch}")
        if val_rows is not None and eval_every > 0 and step % eval_every == 0:
            vl = evaluate(loss_model, val_rows, eval_seqs, micro, device, amp)
            write_log({"step": step, "tokens": tokens_seen, "val_loss": vl, "val_ppl": math.exp(vl)})
            log(f"step {step} validation loss {vl:.4f} perplexity {math.exp(vl):.2f}")
        if time.time() - last_ckpt > ckpt_every:
            checkpoint()
            last_ckpt = time.time()
            log(f"checkpoint at step {step}")

    log(f"stopped ({stopped}) at step {step}, {tokens_seen / 1e6:.1f}M tokens, {train_seconds:.0f} s of steps")
    checkpoint()
    final_train = sum(recent) / max(1, len(recent)) if recent else None
    val_loss = None
    if val_rows is not None:
        if eval_every > 0 and step % eval_every != 0:  # the curve's last point, on its subset
            vl = evaluate(loss_model, val_rows, eval_seqs, micro, device, amp)
            write_log({"step": step, "tokens": tokens_seen, "val_loss": vl, "val_ppl": math.exp(vl)})
        val_loss = evaluate(loss_model, val_rows, len(val_rows), micro, device, amp)
        write_log({"step": step, "tokens": tokens_seen, "val_loss": val_loss, "val_ppl": math.exp(val_loss), "final": True,
                   "sequences": len(val_rows)})
        log(f"final validation loss {val_loss:.4f} perplexity {math.exp(val_loss):.2f} ({len(val_rows)} sequences)")
    logf.close()

    n_saved = write_hf_dir(model, cj, args.out, args.tokenizer or cj["tokenizer"], tied)
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    log(f"wrote {args.out}: model.safetensors {size / 1e6:.1f} MB ({n_saved} values, bfloat16)")

    # Reload what was written with transformers and compare with the trained weights rounded to
    # bfloat16, so a broken directory fails here and not later.
    reload_err = None
    try:
        try:
            back = transformers.AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32, attn_implementation="eager")
        except TypeError:
            back = transformers.AutoModelForCausalLM.from_pretrained(args.out, torch_dtype=torch.float32, attn_implementation="eager")
        back.to(device).eval()
        ref = build_model(mcfg).to(device)
        ref.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in model.state_dict().items()})
        ref.config._attn_implementation = "eager"
        ref.eval()
        x = torch.from_numpy(np.asarray(val_rows[0][:256] if val_rows is not None else rows[0][:256], dtype=np.int64))[None].to(device)
        with torch.no_grad():
            a, b = back(x).logits.float(), ref(x).logits.float()
        reload_err = float((a - b).abs().max() / b.abs().max())
        log(f"reloaded with transformers: max relative logit difference {reload_err:.2e}")
        if reload_err > 1e-3:
            raise SystemExit(f"{args.out}: the reloaded model's logits differ from the trained one's ({reload_err:.2e})")
    except SystemExit:
        raise
    except Exception as e:
        log(f"warning: reload check failed: {type(e).__name__}: {e}")

    info_path = args.data + ".json"
    data_info = json.load(open(info_path)) if os.path.exists(info_path) else None
    summary = {
        "name": cj.get("name"), "model_type": mcfg["model_type"],
        "parameters": n_params, "parameters_without_embedding": n_params - n_embed,
        "tokens_seen": tokens_seen, "steps": step, "planned_steps": planned, "stopped": stopped,
        "epochs": tokens_seen / (len(rows) * seq_len),
        "init": args.init, "minutes_total": (time.time() - T0) / 60, "minutes_training": train_seconds / 60,
        "tokens_per_second": tokens_seen / train_seconds if train_seconds else None,
        "final_train_loss": final_train,
        "val_loss": val_loss, "val_perplexity": math.exp(val_loss) if val_loss is not None else None,
        "val_tokens": len(val_rows) * seq_len if val_rows is not None else 0,
        "reload_max_rel_logit_diff": reload_err,
        "gpu": gpu, "torch": torch.__version__, "transformers": transformers.__version__,
        "compiled": use_compile, "data": args.data, "data_info": data_info, "config": cj,
        "model_safetensors_bytes": size,
    }
    with open(os.path.join(args.out, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    plot(log_path, os.path.join(args.out, "loss_curve.png"))
    log("done")


if __name__ == "__main__":
    main()
