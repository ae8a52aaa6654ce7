#!/usr/bin/env bash
# Benchmarks on the GPU machine: namm bench (and transformers, preset hf) on named sets of runs,
# each run's JSON appended, labelled, to OUTDIR/runs.jsonl, then one summary line per run.
#
# Usage (repository root, device machine): bash scripts/gpu/bench.sh OUTDIR SET...
#   SET is a preset below or a run-list file: one run per line, "label;XLA_FLAGS;bench arguments"
#   ("#" starts a comment; the backend and --json are added; zero.namm names an all-zero NAMM).
#   full       full cache, Llama-3-8B and 15M shapes (random weights, bf16), 128- and 512-token chunks
#   hf         transformers (scripts/gpu/hf_bench.py), Llama-3-8B shape: eager and SDPA attention
#   namm-cost  an all-zero NAMM (evicts nothing), Llama-3-8B shape; namm bench times the full cache
#              in the same process right after, so the difference is the NAMM's own cost; once
#              plain, once with --profile (passes against policy steps, BAM scoring)
#   namm-a     model A ($MODEL), 8,000 random tokens, --profile: the shipped NAMM, and H2O and
#              TOVA at budget 1,024 over 64 decoded tokens
#   baselines  H2O and TOVA at budget 1,024, Llama-3-8B shape, --profile
#   cmdbuf     full cache, prefix graphs, XLA's command buffers (CUDA graphs) off (the default) and on
#   fuse       one graph per pass (the default) against one graph per layer (--no-fuse)
#   chunks     full cache at prefill chunks of 128, 512 and 2,048 tokens
# Settings: CONTEXT (8192), DECODE (32 decoded tokens), MODEL (.gpu/model-a), RUN_TIMEOUT (240 s
# a run), BINS ("namm": /tmp/NAME or .gpu/NAME.xz for each; with several, every run is repeated
# with each build in turn, e.g. BINS="namm namm-base" after stage.sh pack-rev REV namm-base).
# A run that fails (out of memory, time limit) is recorded with its error.
#
# Example: bash scripts/gpu/bench.sh $OUT full hf namm-cost
set -uo pipefail
out=${1:?usage: bench.sh OUTDIR SET... (presets: full hf namm-cost namm-a baselines cmdbuf fuse chunks)}
shift
[ $# -gt 0 ] || { echo "bench.sh: name at least one set" >&2; exit 2; }
CONTEXT=${CONTEXT:-8192}; DECODE=${DECODE:-32}; MODEL=${MODEL:-.gpu/model-a}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}; BINS=${BINS:-namm}
source scripts/gpu/lib.sh
mkdir -p "$out"
binaries $BINS || exit 1
device_env
first=${BINS%% *}
zero_namm /tmp/$first
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"

cb="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL"
preset() {
  local b8="--shape llama3-8b --context $CONTEXT --decode $DECODE"
  case $1 in
  full) echo "8b-full;;$b8
8b-full-chunk512;;$b8 --chunk 512
15m-full;;--shape llama15m --context $CONTEXT --decode $DECODE" ;;
  namm-cost) echo "8b-zero-namm;;$b8 --prefix-graphs --memory namm:zero.namm
8b-zero-namm-profile;;$b8 --prefix-graphs --profile --memory namm:zero.namm" ;;
  namm-a) unpack_model "$MODEL" >&2 || return 1
    local a="--model $MODEL --context 8000 --prefix-graphs --profile"
    echo "a-namm;;$a --decode $DECODE --memory namm
a-h2o-1024;;$a --decode 64 --memory h2o --budget 1024
a-tova-1024;;$a --decode 64 --memory tova --budget 1024" ;;
  baselines) echo "8b-h2o-1024;;$b8 --prefix-graphs --profile --memory h2o --budget 1024
8b-tova-1024;;$b8 --prefix-graphs --profile --memory tova --budget 1024" ;;
  cmdbuf) echo "8b-full;;$b8 --prefix-graphs
8b-full-cmdbuf;$cb;$b8 --prefix-graphs" ;;
  fuse) echo "8b-fused;;$b8
8b-per-layer;;$b8 --no-fuse" ;;
  chunks) for c in 128 512 2048; do echo "8b-full-chunk$c;;$b8 --chunk $c"; done ;;
  *) echo "bench.sh: unknown set $1 (a preset or a run-list file)" >&2; return 1 ;;
  esac
}

# run_list: each line of stdin, with each build.
run_list() {
  local label flags args bin tag
  while IFS=';' read -r label flags args; do
    [[ -z "$label" || "$label" == \#* ]] && continue
    args=${args//zero.namm//tmp/zero.namm}
    for bin in $BINS; do
      tag=$label; [ "$BINS" = "$first" ] || tag="$label@$bin"
      echo "== $tag" >&2
      XLA_FLAGS="$flags" timeout "$RUN_TIMEOUT" /tmp/$bin bench --backend "xla:$PLUGIN" $args --json \
        > /tmp/bench.json 2> /tmp/bench.err
      rc=$?
      python3 - "$tag" "$bin" "$flags" "$args" "$rc" <<'PY' | tee -a "$out/runs.jsonl"
import json, subprocess, sys
tag, build, flags, args, rc = sys.argv[1:6]
try:
    d = json.load(open('/tmp/bench.json'))
except Exception:
    err = [l for l in open('/tmp/bench.err', errors='replace').read().splitlines()
           if l and not any(s in l for s in ('cuda_executor', 'Source Location', 'external'))]
    d = {'error': f'exit {rc}: ' + (err[-1][:300] if err else 'no output')}
d.pop('kv_tokens_per_layer', None)
d.update(label=tag, build=build, xla_flags=flags, args=args)
print(json.dumps(d))
PY
    done
  done
}

for set in "$@"; do
  if [ "$set" = hf ]; then
    for attn in eager sdpa; do
      echo "== hf-$attn"
      timeout "$RUN_TIMEOUT" python3 scripts/gpu/hf_bench.py --shape llama3-8b --context "$CONTEXT" --decode "$DECODE" --attn $attn 2>/dev/null \
        | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); d['label']='hf-$attn'; print(json.dumps(d))" | tee -a "$out/runs.jsonl"
    done
  elif [ -f "$set" ]; then run_list < "$set"
  else preset "$set" | run_list; fi
done
echo; python3 scripts/gpu/summarize_runs.py "$out/runs.jsonl" | tee "$out/summary.txt"
