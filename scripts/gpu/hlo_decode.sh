#!/usr/bin/env bash
# What the GPU launches per decoded token: dumps the optimized HLO of the fused pass graphs of
# `namm bench` for one shape and context, and for each pass module prints its kernel count
# (fusions, copies, custom calls such as cuBLAS gemms) and a histogram of the kernels by kind
# (the fusion's name without its number). The decode graph is the module with the fewest kernels.
# MODULES (default fusedExec) picks the modules by a part of their name, e.g. namm_bam for the
# NAMM's BAM scoring graphs.
# Usage: NAMM=/tmp/namm bash scripts/gpu/hlo_decode.sh OUTDIR [SHAPE] [CONTEXT] [MEMORY]
set -uo pipefail
out=${1:-/tmp/hlo}; shape=${2:-llama3-8b}; ctx=${3:-8192}; mem=${4:-full}
mkdir -p "$out"
NAMM=${NAMM:-/tmp/namm}
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
dump=/tmp/dump-$shape-$ctx; rm -rf "$dump"
XLA_FLAGS="--xla_dump_to=$dump --xla_dump_hlo_as_text" timeout 300 $NAMM bench --shape "$shape" \
  --backend "xla:$plugin" --context "$ctx" --decode 2 --memory "$mem" >/dev/null 2>"$out/bench.err"
python3 - "$dump" "$out" "$shape" "${MODULES:-fusedExec}" <<'PY'
import collections, glob, os, re, sys
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
    rows.append((sum(kinds.values()), os.path.basename(f), kinds))
rows.sort(key=lambda r: (r[0], r[1]))
with open(os.path.join(out, f'kernels-{shape}-{modules}.txt'), 'w') as w:
    for n, name, kinds in rows:
        w.write(f'{name[:40]} kernels {n}\n')
        for k, c in kinds.most_common():
            w.write(f'  {c:5d} {k}\n')
print(open(os.path.join(out, f'kernels-{shape}-{modules}.txt')).read()[:6000])
if rows:
    os.system(f'cp {os.path.join(dump, rows[0][1])} {os.path.join(out, f"smallest-{modules}_after_opt.txt")}')
PY
