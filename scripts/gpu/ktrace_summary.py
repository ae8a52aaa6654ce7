#!/usr/bin/env python3
"""Summarises a ktrace log (scripts/gpu/ktrace.c). The trace is cut into segments at idle gaps
of more than --gap seconds (compilations); it lists them. Then, over a window of segment --seg
(negative counts from the end): the last --window seconds (all of it if 0) before the segment's
end minus --skip-end seconds (work after the run of interest, e.g. the next run's allocations),
it prints the GPU's busy and idle time and the GPU time per kernel name, largest first.
With --block-gap MS the window is further cut into blocks at idle gaps over MS milliseconds (one
block is about one pass or one scoring execution); they are listed, and --block I (negative
from the end) sums the kernels of block I alone, e.g. one pass, whose kernel names are the
fusions of its module in XLA's HLO dump.
Usage: ktrace_summary.py TRACE.tsv [--gap 1.0] [--seg -1] [--window 1.5] [--skip-end 0]
                         [--top 40] [--block-gap 0.1 [--block -1]]"""
import argparse, collections

ap = argparse.ArgumentParser()
ap.add_argument("trace")
ap.add_argument("--gap", type=float, default=1.0)
ap.add_argument("--seg", type=int, default=-1)
ap.add_argument("--window", type=float, default=0)
ap.add_argument("--skip-end", type=float, default=0)
ap.add_argument("--top", type=int, default=40)
ap.add_argument("--block-gap", type=float, default=0)
ap.add_argument("--block", type=int)
a = ap.parse_args()
rows = []
with open(a.trace, errors="replace") as f:
    for line in f:
        p = line.rstrip("\n").split("\t", 3)
        if len(p) == 4:
            rows.append((int(p[0]), int(p[1]), p[3]))
rows.sort()


def split(rs, gap_ns):
    out, cur = [], [rs[0]]
    for r in rs[1:]:
        if r[0] - (cur[-1][0] + cur[-1][1]) > gap_ns:
            out.append(cur)
            cur = []
        cur.append(r)
    out.append(cur)
    return out


def summary(title, rs):
    end = max(r[0] + r[1] for r in rs)
    wall = (end - rs[0][0]) / 1e9
    busy = sum(r[1] for r in rs) / 1e9
    print(f"\n{title}: {len(rs)} kernels, busy {busy*1e3:.1f} ms, idle {(wall-busy)*1e3:.1f} ms of {wall*1e3:.1f} ms")
    tot, cnt = collections.Counter(), collections.Counter()
    for _, d, n in rs:
        tot[n] += d
        cnt[n] += 1
    print("ms\tcount\tus_each\tkernel")
    for n, d in tot.most_common(a.top):
        print(f"{d/1e6:.2f}\t{cnt[n]}\t{d/1e3/cnt[n]:.1f}\t{n[:120]}")


segs = split(rows, a.gap * 1e9)
t0 = rows[0][0]
print("segment\tstart_s\twall_s\tkernels\tkernel_ms")
for i, s in enumerate(segs):
    wall = (s[-1][0] + s[-1][1] - s[0][0]) / 1e9
    print(f"{i}\t{(s[0][0]-t0)/1e9:.2f}\t{wall:.3f}\t{len(s)}\t{sum(r[1] for r in s)/1e6:.1f}")
seg = segs[a.seg]
end = seg[-1][0] + seg[-1][1] - a.skip_end * 1e9
win = [r for r in seg if r[0] <= end and (a.window <= 0 or r[0] >= end - a.window * 1e9)]
summary(f"segment {a.seg}, window {a.window or 'all'} s ending {a.skip_end} s before its end", win)
if a.block_gap > 0:
    blocks = split(win, a.block_gap * 1e6)
    print(f"\n{len(blocks)} blocks (idle gaps over {a.block_gap} ms): index, kernels, busy ms, first kernel")
    for i, b in enumerate(blocks):
        print(f"{i - len(blocks)}\t{len(b)}\t{sum(r[1] for r in b)/1e6:.2f}\t{b[0][2][:60]}")
    if a.block is not None:
        summary(f"block {a.block}", blocks[a.block])
