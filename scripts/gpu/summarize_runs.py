#!/usr/bin/env python3
"""One line per `namm bench --json` run of a bench_runs.sh output (runs.jsonl): label, prefill
seconds, decode ms/token, graphs, first-call and cold-run seconds, and when present the full
cache's figures in the same process and the --profile split (passes, policy steps, scoring).

    python3 scripts/gpu/summarize_runs.py OUTDIR/runs.jsonl
"""
import json
import sys

for line in open(sys.argv[1]):
    d = json.loads(line)
    out = [d['label'], 'pre', round(d['prefill_seconds'], 3), 'dec', round(d['decode_ms_per_token'], 2),
           'graphs', d['graphs_compiled'], 'first', round(d['first_call_seconds'], 1), 'cold', round(d['cold_run_seconds'], 1)]
    for key, name in [('full_cache_prefill_seconds', 'full'), ('full_cache_decode_ms_per_token', 'full_dec'),
                      ('pass_seconds', 'pass'), ('policy_step_seconds', 'policy'), ('namm_score_seconds', 'score')]:
        if key in d:
            out += [name, d[key]]
    print(*out)
