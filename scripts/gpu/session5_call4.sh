#!/usr/bin/env bash
# Session 5, call 4 (on the device from the repository root, OUT set): scripts/gpu/runs/session5d.txt,
# then the kernels of the BAM scoring graphs (15M shape, 8k, all-zero NAMM).
set -uo pipefail
source scripts/gpu/lib.sh
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" .gpu/namm.xz /tmp/namm
chmod +x /tmp/namm
unpack_model .gpu/model-a
NAMM=/tmp/namm RUN_TIMEOUT=400 bash scripts/gpu/bench_runs.sh $OUT/runs < scripts/gpu/runs/session5d.txt > /dev/null
python3 - $OUT/runs/runs.jsonl <<'PY'
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    print(d['label'], 'pre', round(d['prefill_seconds'], 3), 'dec', round(d['decode_ms_per_token'], 2), 'graphs', d['graphs_compiled'],
          'first', round(d['first_call_seconds'], 1), 'cold', round(d['cold_run_seconds'], 1), 'full', d.get('full_cache_prefill_seconds'),
          d.get('full_cache_decode_ms_per_token'), 'pass', d.get('pass_seconds'), 'policy', d.get('policy_step_seconds'), 'score', d.get('namm_score_seconds'))
PY
MODULES=Scorer NAMM=/tmp/namm bash scripts/gpu/hlo_decode.sh $OUT/hlo llama15m 8192 namm:/tmp/zero.namm | head -60
