#!/usr/bin/env bash
# What the GPU launches per pass: dumps XLA's optimised HLO of the graphs of one namm bench run
# and, per module, counts its kernels (fusions, copies, custom calls such as cuBLAS products) by
# kind (a fusion's name without its number), its copies, and its input/output aliases (a cache
# updated in place has one per donated buffer and no copy of it). The decode graph is the pass
# module with the fewest kernels.
#
# Usage (repository root, device machine): bash scripts/gpu/hlo.sh OUTDIR [SHAPE] [CONTEXT] [MEMORY]
#   defaults: llama3-8b 8192 full; MEMORY e.g. namm:zero.namm (an all-zero NAMM) or h2o:budget=1024.
#   MODULES (default fusedExec, the pass graphs) picks modules by a part of their name, e.g.
#   namm_bam for the NAMM's scoring graphs.
# Writes OUTDIR/kernels-SHAPE-MODULES.txt and the smallest module's HLO (smallest-MODULES.txt).
set -uo pipefail
out=${1:?usage: hlo.sh OUTDIR [SHAPE] [CONTEXT] [MEMORY]}; shape=${2:-llama3-8b}; ctx=${3:-8192}; mem=${4:-full}
source scripts/gpu/lib.sh
mkdir -p "$out"
binaries namm || exit 1
device_env
zero_namm
mem=${mem//zero.namm//tmp/zero.namm}
dump=/tmp/dump-$shape-$ctx; rm -rf "$dump"
XLA_FLAGS="--xla_dump_to=$dump --xla_dump_hlo_as_text" timeout ${RUN_TIMEOUT:-300} /tmp/namm bench --shape "$shape" \
  --backend "xla:$PLUGIN" --context "$ctx" --decode 2 --memory "$mem" >/dev/null 2>"$out/bench.err" \
  || { quiet_errors "$out/bench.err" | tail -3; exit 1; }
python3 - "$dump" "$out" "$shape" "${MODULES:-fusedExec}" <<'PY'
import collections, glob, os, re, shutil, sys
dump, out, shape, modules = sys.argv[1:5]
rows = []
for f in glob.glob(os.path.join(dump, f'*{modules}*after_optimizations.txt')):
    text = open(f).read()
    m = re.search(r'^ENTRY.*?^}', text, re.S | re.M)
    entry = m.group(0) if m else ''
    kinds = collections.Counter()
    for line in entry.splitlines():
        k = re.search(r'^\s*(?:ROOT )?%?([\w.-]+) = .*? (fusion|copy|custom-call|dynamic-update-slice)\(', line)
        if not k:
            continue
        if k.group(2) == 'fusion':
            kinds[re.sub(r'[.\d]+$', '', k.group(1))] += 1
        elif k.group(2) == 'custom-call':
            t = re.search(r'custom_call_target="([^"]+)"', line)
            kinds['custom-call:' + (t.group(1) if t else '?')] += 1
        else:
            kinds[k.group(2)] += 1
    header = text.split('\n', 1)[0]  # HloModule ..., input_output_alias={ {0}: (3, {}, may-alias), ... }
    aliases = len(re.findall(r'-alias\)', header))
    rows.append((sum(kinds.values()), os.path.basename(f), kinds, aliases))
rows.sort(key=lambda r: (r[0], r[1]))
path = os.path.join(out, f'kernels-{shape}-{modules}.txt')
with open(path, 'w') as w:
    for n, name, kinds, aliases in rows:
        w.write(f'{name[:40]} kernels {n} copies {kinds["copy"]} aliases {aliases}\n')
        for k, c in kinds.most_common():
            w.write(f'  {c:5d} {k}\n')
print(open(path).read()[:6000])
if rows:
    shutil.copy(os.path.join(dump, rows[0][1]), os.path.join(out, f'smallest-{modules}.txt'))
PY
