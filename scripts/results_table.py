#!/usr/bin/env python3
"""Markdown tables from `namm eval` results, for docs/results.md.

Reads run directories or files: DIR (its results.json, else its journal.jsonl), DIR/results.json
or DIR/journal.jsonl. Several inputs are merged; a sample that appears in several (same task,
sample id, policy and budget) counts once. The figures are recomputed from the samples as `namm
eval` computes its summary (eval/summary.go): per task x length x memory (policy@budget), n,
score (mean metric x100), normalised score (sum of scores / sum of the full cache's scores on the
same sample ids; '-' without a reference or where it scored 0), mean KV tokens per layer (mean
over samples) and peak KV tokens per layer (max over samples of the peak summed over layers /
layers); per length and memory a mean-over-tasks row (scores and KV means averaged over tasks,
normalised scores over the tasks that have one, peak the max). The long table adds 95%
bootstrap intervals of the score and the normalised score (paired with the full cache on the
same ids; stratified by task in the mean rows), computed as eval/bootstrap.go does.

    python3 scripts/results_table.py runs/baselines-2k            # one long table
    python3 scripts/results_table.py --pivot runs/a-2k runs/a-4k  # per length: memory x task
    python3 scripts/results_table.py --by-length runs/models-a        # per memory: length x task
    python3 scripts/results_table.py --kv namm --length 4096 runs/a-namm   # mean KV tokens (int)
    python3 scripts/results_table.py --check runs/readme          # recomputation == results.json

--check recomputes the summary of each results.json from its samples and compares it with the
summary `namm eval` wrote (exit status 1 on a difference): a test of this script against the Go
implementation.
"""
import argparse
import collections
import json
import os
import random
import re
import sys
import zlib

REFERENCE = "full"


def load_samples(path):
    """Samples (SampleResult dicts) of one input: a run directory, results.json or journal."""
    if os.path.isdir(path):
        res, jour = os.path.join(path, "results.json"), os.path.join(path, "journal.jsonl")
        if os.path.exists(res):
            path = res
        elif os.path.exists(jour):
            path = jour
        else:
            raise SystemExit(f"{path}: neither results.json nor journal.jsonl")
    if path.endswith(".jsonl"):
        out = []
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    # A run killed mid-write leaves a partial last line; eval skips it too.
                    print(f"warning: {path} line {n}: {e}; skipped", file=sys.stderr)
        return out
    with open(path) as f:
        d = json.load(f)
    if "samples" not in d:
        raise SystemExit(f"{path}: no 'samples' (not a namm eval results.json)")
    return d["samples"] or []


def merge(inputs):
    seen, out = set(), []
    for p in inputs:
        for s in load_samples(p):
            for field in ("task", "id", "policy", "score", "mean_kv_tokens", "peak_kv_tokens"):
                if field not in s:
                    raise SystemExit(f"{p}: a sample has no {field!r}: {json.dumps(s)[:200]}")
            key = (s["task"], s["id"], s["policy"], s.get("budget", ""))
            if key not in seen:
                seen.add(key)
                out.append(s)
    return out


def task_name_and_length(task):
    """'niah_single:len=2048:seed=1' -> ('niah_single', 2048); no len= -> (task, None)."""
    m = re.search(r":len=(\d+)", task)
    name = re.sub(r":(len|seed)=[^:]*", "", task)
    return name, (int(m.group(1)) if m else None)


def memory_labels(samples):
    """Display label per (policy, budget): policy@budget, with a NAMM file's path shortened to
    'namm' when the samples use only one NAMM file, else to 'namm:BASENAME'."""
    namm_paths = {s["policy"].split(",")[0] for s in samples if s["policy"].startswith("namm:")}
    labels = {}
    for s in samples:
        pol, bud = s["policy"], s.get("budget", "")
        name = pol
        if pol.startswith("namm:"):
            head, _, opts = pol.partition(",")
            name = "namm" if len(namm_paths) == 1 else "namm:" + os.path.basename(head[5:])
            if opts:
                name += "," + opts
        labels[(pol, bud)] = name + (f"@{bud}" if bud else "")
    return labels


# cut: the longest prompt (tokens fed) when some samples were middle-truncated, else None.
# strata: per task, (scores, [(score, full cache's score) on shared ids]), for the intervals.
Row = collections.namedtuple("Row", "task length memory n score norm kv_mean kv_peak cut strata",
                             defaults=[None, ()])

# Resamples of the bootstrap, as eval/bootstrap.go: ~50 beyond each end of a 95% interval.
RESAMPLES = 2000


def percentile(xs, q):
    """Linear interpolation between the sorted values, as eval/bootstrap.go."""
    xs = sorted(xs)
    pos = q * (len(xs) - 1)
    i = int(pos)
    return xs[i] if i + 1 >= len(xs) else xs[i] + (pos - i) * (xs[i + 1] - xs[i])


def intervals(strata, key):
    """95% percentile-bootstrap intervals (score, normalised) of a row, each task resampled on
    its own and the statistic averaged over tasks as the point estimate is (the normalised
    score paired: the same resampled ids for the policy and the full cache). The draws are
    Python's (seeded by the row), so the ends differ slightly from namm eval's own intervals.
    None where a task has fewer than 2 samples, or over half the resamples hit a reference
    sum of 0."""
    rng = random.Random(zlib.crc32(key.encode()))
    score_ok = strata and all(len(sc) >= 2 for sc, _ in strata)
    paired = [pr for _, pr in strata if len(pr) >= 2 and sum(r for _, r in pr) > 0]
    scores, norms, skipped = [], [], 0
    for _ in range(RESAMPLES):
        if score_ok:
            scores.append(sum(100 * sum(rng.choices(sc, k=len(sc))) / len(sc) for sc, _ in strata) / len(strata))
        if paired:
            ratios = []
            for pr in paired:
                draw = rng.choices(pr, k=len(pr))
                ref = sum(r for _, r in draw)
                if ref == 0:
                    break
                ratios.append(sum(x for x, _ in draw) / ref)
            if len(ratios) < len(paired):
                skipped += 1
            else:
                norms.append(sum(ratios) / len(ratios))
    score = (percentile(scores, 0.025), percentile(scores, 0.975)) if score_ok else None
    norm = (percentile(norms, 0.025), percentile(norms, 0.975)) if paired and skipped <= RESAMPLES // 2 else None
    return score, norm


def summarize(samples):
    """Rows per (length, task, memory) in first-appearance order, then mean-over-tasks rows."""
    labels = memory_labels(samples)
    groups = collections.OrderedDict()
    refs = {}
    for s in samples:
        task, length = task_name_and_length(s["task"])
        mem = labels[(s["policy"], s.get("budget", ""))]
        groups.setdefault((length, task, mem), []).append(s)
        if s["policy"] == REFERENCE and not s.get("budget"):
            refs[(s["task"], s["id"])] = s["score"]
    lengths = sorted({k[0] for k in groups}, key=lambda x: (x is None, x or 0))
    rows = []
    for length in lengths:
        keys = [k for k in groups if k[0] == length]
        for (_, task, mem) in keys:
            ds = groups[(length, task, mem)]
            n = len(ds)
            pairs = [(d["score"], refs[(d["task"], d["id"])]) for d in ds if (d["task"], d["id"]) in refs]
            ref_sum = sum(r for _, r in pairs)
            norm = sum(sc for sc, _ in pairs) / ref_sum if pairs and ref_sum else None
            layers = max(len(d.get("cache_mean_per_layer") or []) for d in ds)
            peak = max(d["peak_kv_tokens"] for d in ds) / layers if layers else float("nan")
            cut = max((d.get("prompt_tokens", 0) for d in ds if d.get("truncated")), default=None)
            rows.append(Row(task, length, mem, n, 100 * sum(d["score"] for d in ds) / n, norm,
                            sum(d["mean_kv_tokens"] for d in ds) / n, peak, cut,
                            (([d["score"] for d in ds], pairs),)))
    return rows


def with_means(rows):
    """rows plus, per length with several tasks, one mean-over-tasks row per memory."""
    out = []
    for length in dict.fromkeys(r.length for r in rows):
        block = [r for r in rows if r.length == length]
        out += block
        tasks = list(dict.fromkeys(r.task for r in block))
        if len(tasks) < 2:
            continue
        for mem in dict.fromkeys(r.memory for r in block):
            rs = [r for r in block if r.memory == mem]
            norms = [r.norm for r in rs if r.norm is not None]
            out.append(Row(f"mean over {len(rs)} tasks", length, mem, sum(r.n for r in rs),
                           sum(r.score for r in rs) / len(rs), sum(norms) / len(norms) if norms else None,
                           sum(r.kv_mean for r in rs) / len(rs), max(r.kv_peak for r in rs), None,
                           tuple(st for r in rs for st in r.strata)))
    return out


def fmt_norm(x):
    return "-" if x is None else f"{x:.2f}"


def fmt_len(x):
    return "-" if x is None else str(x)


def fmt_ci(ci, digits):
    return "-" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def long_table(rows):
    print("| task | length | memory | n | score | 95% interval | normalised | 95% interval | KV mean/layer | KV peak/layer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in with_means(rows):
        score_ci, norm_ci = intervals(r.strata, f"{r.task}|{r.length}|{r.memory}")
        print(f"| {r.task} | {fmt_len(r.length)} | {r.memory} | {r.n} | {r.score:.1f} | {fmt_ci(score_ci, 1)} "
              f"| {fmt_norm(r.norm)} | {fmt_ci(norm_ci, 2)} | {r.kv_mean:.0f} | {r.kv_peak:.0f} |")


def pivot_tables(rows):
    """Per length: one row per memory, one column per task (score, normalised in brackets)."""
    for length in dict.fromkeys(r.length for r in rows):
        block = [r for r in rows if r.length == length]
        tasks = list(dict.fromkeys(r.task for r in block))
        mems = list(dict.fromkeys(r.memory for r in block))
        cell = {(r.task, r.memory): r for r in block}
        print(f"\n**{fmt_len(length)} tokens** (score, normalised score in brackets; KV: mean tokens per layer)\n")
        print("| memory | KV mean | " + " | ".join(tasks) + " | mean |")
        print("|---|---|" + "---|" * (len(tasks) + 1))
        for m in mems:
            rs = [cell[(t, m)] for t in tasks if (t, m) in cell]
            norms = [r.norm for r in rs if r.norm is not None]
            cells = []
            for t in tasks:
                r = cell.get((t, m))
                cells.append("" if r is None else f"{r.score:.0f} ({fmt_norm(r.norm)})")
            mean = f"{sum(r.score for r in rs) / len(rs):.1f} ({fmt_norm(sum(norms) / len(norms) if norms else None)})"
            kv = sum(r.kv_mean for r in rs) / len(rs)
            print(f"| {m} | {kv:.0f} | " + " | ".join(cells) + f" | {mean} |")


def by_length_tables(rows):
    """Per memory: one row per length, one column per task (scores), and the mean over tasks."""
    for mem in dict.fromkeys(r.memory for r in rows):
        block = [r for r in rows if r.memory == mem]
        tasks = list(dict.fromkeys(r.task for r in block))
        cell = {(r.length, r.task): r for r in block}
        print(f"\n**{mem}** (score; n samples per cell: "
              f"{'/'.join(str(n) for n in sorted({r.n for r in block}))}; KV: mean tokens per layer)\n")
        print("| length | " + " | ".join(tasks) + " | mean | KV mean |")
        print("|---|" + "---|" * (len(tasks) + 2))
        for length in dict.fromkeys(r.length for r in block):
            rs = [cell[(length, t)] for t in tasks if (length, t) in cell]
            cells = ["" if (length, t) not in cell else f"{cell[(length, t)].score:.0f}" for t in tasks]
            cuts = [r.cut for r in rs if r.cut]
            label = fmt_len(length) + (f" (cut to <= {max(cuts)})" if cuts else "")
            print(f"| {label} | " + " | ".join(cells) +
                  f" | {sum(r.score for r in rs) / len(rs):.1f} | {sum(r.kv_mean for r in rs) / len(rs):.0f} |")


def kv_of(rows, prefix, length):
    """Mean over tasks of the mean KV tokens per layer of the memories starting with prefix."""
    rs = [r for r in rows if r.memory.startswith(prefix) and (length is None or r.length == length)]
    if not rs:
        raise SystemExit(f"no results for memory {prefix!r}" + (f" at length {length}" if length else ""))
    mems = sorted({r.memory for r in rs})
    if len(mems) > 1:
        raise SystemExit(f"memory prefix {prefix!r} matches several: {', '.join(mems)}")
    return sum(r.kv_mean for r in rs) / len(rs)


def check(paths):
    """Compare the recomputed rows with the summary in each results.json."""
    bad = 0
    for p in paths:
        res = os.path.join(p, "results.json") if os.path.isdir(p) else p
        with open(res) as f:
            d = json.load(f)
        mine = {}
        for r in summarize(d["samples"]):
            mine[(r.task, r.length, r.memory)] = r
        labels = memory_labels(d["samples"])
        checked = 0
        for row in d["summary"]:
            if row["task"] == "(mean over tasks)":
                continue
            task, length = task_name_and_length(row["task"])
            r = mine.get((task, length, labels[(row["policy"], row["budget"])]))
            if r is None:
                print(f"{res}: summary row {row['task']} {row['policy']}@{row['budget']}: not recomputed")
                bad += 1
                continue
            want = [row["samples"], row["score"], row["normalized"], row["mean_kv_tokens_per_layer"],
                    row["peak_kv_tokens_per_layer"]]
            got = [r.n, r.score, r.norm, r.kv_mean, r.kv_peak]
            for name, w, g in zip(["n", "score", "normalised", "kv mean", "kv peak"], want, got):
                if (w is None) != (g is None) or (w is not None and abs(w - g) > 1e-9 * max(1, abs(w))):
                    print(f"{res}: {row['task']} {row['policy']}@{row['budget']} {name}: results.json {w}, recomputed {g}")
                    bad += 1
            checked += 1
        print(f"{res}: {checked} summary rows checked, {bad} differences")
    return bad == 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+", help="run directories, results.json or journal.jsonl files")
    ap.add_argument("--pivot", action="store_true", help="one memory x task table per length")
    ap.add_argument("--by-length", action="store_true", help="one length x task table (scores) per memory")
    ap.add_argument("--kv", metavar="MEMORY", help="print the mean KV tokens per layer (rounded) of this memory")
    ap.add_argument("--length", type=int, help="with --kv: only tasks of this length")
    ap.add_argument("--check", action="store_true", help="compare with the summary in results.json")
    a = ap.parse_args(argv)
    if a.check:
        return 0 if check(a.inputs) else 1
    rows = summarize(merge(a.inputs))
    if not rows:
        raise SystemExit("no samples")
    if a.kv:
        print(round(kv_of(rows, a.kv, a.length)))
    elif a.pivot:
        pivot_tables(rows)
    elif a.by_length:
        by_length_tables(rows)
    else:
        long_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
