#!/usr/bin/env python3
"""Summarises a ktrace log (scripts/gpu/ktrace.c). The trace is cut into segments at idle gaps
of more than --gap seconds (compilations); it lists them, then sums GPU time per kernel name over
the last --window seconds of segment --seg (negative counts from the end), largest first.
Usage: ktrace_summary.py TRACE.tsv [--gap 1.0] [--seg -1] [--window 1.5] [--top 40]"""
import argparse, collections

ap = argparse.ArgumentParser()
ap.add_argument("trace")
ap.add_argument("--gap", type=float, default=1.0)
ap.add_argument("--seg", type=int, default=-1)
ap.add_argument("--window", type=float, default=0)
ap.add_argument("--top", type=int, default=40)
a = ap.parse_args()
rows = []
with open(a.trace, errors="replace") as f:
    for line in f:
        p = line.rstrip("\n").split("\t", 3)
        if len(p) == 4:
            rows.append((int(p[0]), int(p[1]), p[3]))
rows.sort()
segs, cur = [], [rows[0]]
for r in rows[1:]:
    prev = cur[-1]
    if r[0] - (prev[0] + prev[1]) > a.gap * 1e9:
        segs.append(cur); cur = []
    cur.append(r)
segs.append(cur)
t0 = rows[0][0]
print("segment\tstart_s\twall_s\tkernels\tkernel_ms")
for i, s in enumerate(segs):
    wall = (s[-1][0] + s[-1][1] - s[0][0]) / 1e9
    print(f"{i}\t{(s[0][0]-t0)/1e9:.2f}\t{wall:.3f}\t{len(s)}\t{sum(r[1] for r in s)/1e6:.1f}")
seg = segs[a.seg]
end = seg[-1][0] + seg[-1][1]
if a.window > 0:
    seg = [r for r in seg if r[0] >= end - a.window * 1e9]
tot, cnt = collections.Counter(), collections.Counter()
for _, d, n in seg:
    tot[n] += d; cnt[n] += 1
wall = (end - seg[0][0]) / 1e9
print(f"\nsegment {a.seg}, last {a.window or 'all'} s: {len(seg)} kernels, {sum(tot.values())/1e6:.1f} ms of kernels in {wall:.3f} s")
print("ms\tcount\tus_each\tkernel")
for n, d in tot.most_common(a.top):
    print(f"{d/1e6:.2f}\t{cnt[n]}\t{d/1e3/cnt[n]:.1f}\t{n[:120]}")
