#!/usr/bin/env python3
"""One line per run of a bench.sh output (OUTDIR/runs.jsonl): label, prefill seconds, decode
ms/token, graphs, first-call and cold-run seconds, and when present the full cache's figures in
the same process and the --profile split (passes, policy steps, BAM scoring); a failed run shows
its error.

    python3 scripts/gpu/summarize_runs.py OUTDIR/runs.jsonl
"""
import json
import sys


def r(x, n):
    return [round(v, n) for v in x] if isinstance(x, list) else round(x, n)


for line in open(sys.argv[1]):
    d = json.loads(line)
    out = [d.get('label', d.get('run', '?'))]
    if 'error' in d:
        print(*out, 'error', d['error'])
        continue
    out += ['pre', r(d['prefill_seconds'], 3), 'dec', r(d['decode_ms_per_token'], 2)]
    for key, name, n in [('graphs_compiled', 'graphs', 0), ('first_call_seconds', 'first', 1),
                         ('cold_run_seconds', 'cold', 1),
                         ('full_cache_prefill_seconds', 'full', 3), ('full_cache_decode_ms_per_token', 'full_dec', 2),
                         ('pass_seconds', 'pass', 3), ('policy_step_seconds', 'policy', 3),
                         ('namm_score_seconds', 'score', 3)]:
        if key in d:
            out += [name, r(d[key], n)]
    print(*out)
