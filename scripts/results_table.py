#!/usr/bin/env python3
"""Summarise a `namm eval` run directory (journal.jsonl) as a Markdown table:
task x policy@budget -> n, score, normalised score, mean/peak KV tokens per layer.

    python3 scripts/results_table.py runs/baselines-2k
"""
import collections, json, sys


def main(run):
    rows = collections.OrderedDict()
    ref = {}
    for line in open(f"{run}/journal.jsonl"):
        d = json.loads(line)
        task = d["task"].split(":seed")[0]
        key = (task, d["policy"] + (f"@{d['budget']}" if d.get("budget") else ""))
        rows.setdefault(key, []).append(d)
        if d["policy"] == "full":
            ref[(task, d["id"])] = d["score"]
    print("| task | memory | n | score | normalised | KV mean/layer | KV peak/layer |")
    print("|---|---|---|---|---|---|---|")
    for (task, mem), ds in rows.items():
        n = len(ds)
        score = 100 * sum(d["score"] for d in ds) / n
        refs = [ref.get((task, d["id"])) for d in ds]
        rs = sum(r for r in refs if r is not None)
        norm = "-" if rs == 0 else f"{sum(d['score'] for d in ds) / rs:.2f}"
        layers = len(ds[0]["cache_mean_per_layer"])
        kv_mean = sum(d["mean_kv_tokens"] for d in ds) / n
        kv_peak = max(d["peak_kv_tokens"] for d in ds) / layers
        print(f"| {task} | {mem} | {n} | {score:.1f} | {norm} | {kv_mean:.0f} | {kv_peak:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
