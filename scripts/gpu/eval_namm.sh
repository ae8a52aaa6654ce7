#!/usr/bin/env bash
# The result tables of an evolved NAMM on the GPU:
#   a) model A, the training tasks and held-out tasks at each length: full cache, the NAMM, and
#      every budgeted baseline at the NAMM's own mean cache size (first the NAMM runs; its mean
#      KV tokens per layer at each length, read from its journal, is the baselines' --budget);
#   b) model A at one length: the budget sweep of the baselines (ratios), with the NAMM and the
#      baselines at its size in the same run, so that score_vs_cache.png has the NAMM as a point;
#   c) model B, zero-shot (the NAMM evolved on model A, unchanged): as a).
#
# Usage (repository root, device machine):
#   bash scripts/gpu/eval_namm.sh .gpu/best.namm [a b c]
#
# Each part resumes (namm eval's journal): if .gpu/eval-namm.tgz exists (the $OUT/eval-namm.tgz
# of an earlier command, copied back into .gpu/), it is unpacked first and finished samples are
# skipped; the same NAMM file must be given. Every eval runs under a deadline; at the deadline the
# rest is skipped and everything is packed: run the same command again to finish.
#
# Writes to $OUT (at most 6 files): eval-namm.tgz (all run directories: journal.jsonl,
# results.json, run.json, the PNGs, the NAMM), tables.md (scripts/results_table.py's tables of
# each part), eval.log, sweep-score_vs_cache.png (part b), A-cache_per_layer.png and
# B-cache_per_layer.png (the matched-size runs of models A and B at SWEEP_LEN). Run
# directories in eval-namm.tgz: A-namm (full + NAMM, every length), A-L<len> (full, NAMM and
# baselines at the NAMM's size), A-sweep, B-namm, B-L<len>.
set -uo pipefail
start=$SECONDS
nammfile=${1:?usage: eval_namm.sh NAMMFILE [PARTS]}
PARTS=${2:-a b c}
OUT=${OUT:-/tmp/out}
NAMM=${NAMM:-/tmp/namm}
MODEL_A=${MODEL_A:-.gpu/model-a}
MODEL_B=${MODEL_B:-.gpu/model-b}
LENGTHS=${LENGTHS:-2048 4096 8192}
SAMPLES=${SAMPLES:-5}                    # samples per task and length
# The evolution's tasks (scripts/gpu/evolve_namm.sh) and tasks it never saw.
TRAIN_TASKS=${TRAIN_TASKS:-niah_multikey passage_retrieval}
HELDOUT_TASKS=${HELDOUT_TASKS:-niah_single niah_multivalue vartrack fwe cwe}
BASELINES=${BASELINES:-h2o,streaming,l2,tova,snapkv,random}   # fastgen takes no budget
SWEEP_LEN=${SWEEP_LEN:-4096}
SWEEP_TASKS=${SWEEP_TASKS:-$TRAIN_TASKS niah_single}
SWEEP_BUDGETS=${SWEEP_BUDGETS:-0.25,0.5,0.75,0.875}
WORKERS=${WORKERS:-4}                    # samples evaluated at once (sessions share the GPU)
DEADLINE=${DEADLINE:-570}                # seconds from the script's start by which all is packed
WORK=${WORK:-/tmp/eval-namm}             # fixed: the NAMM's path is part of the journal keys
RESUME=${RESUME:-.gpu/eval-namm.tgz}
BACKEND=${BACKEND:-}

source scripts/gpu/lib.sh
mkdir -p "$OUT" "$WORK"
unpack_binary "$NAMM" || exit 1
if [ -f "$RESUME" ] && [ ! -f "$WORK/namm.namm" ]; then
  echo "resuming: unpacking $RESUME into $WORK"
  tar xzf "$RESUME" -C "$WORK" || exit 1
fi
if [ -f "$WORK/namm.namm" ] && ! cmp -s "$nammfile" "$WORK/namm.namm"; then
  echo "error: $WORK (or $RESUME) holds results of another NAMM file than $nammfile; remove it to start over" >&2
  exit 1
fi
cp "$nammfile" "$WORK/namm.namm"
nammspec=namm:$WORK/namm.namm
if [ -z "$BACKEND" ]; then
  plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
  BACKEND=xla:$plugin
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
table() { python3 scripts/results_table.py "$@"; }

stopped=0
# run_eval DIR MODEL TASKS MEMORY [eval flags...]: one namm eval under what is left of the
# deadline (SIGINT: namm eval stops between samples, its journal intact). Fails when stopped.
run_eval() {
  local dir=$1 model=$2 tasks=$3 memory=$4; shift 4
  [ $stopped = 1 ] && return 1
  local left=$((DEADLINE - (SECONDS - start) - 25))
  if [ $left -lt 30 ]; then stopped=1; echo "deadline: skipping $dir"; return 1; fi
  echo "== $dir: $memory $* (at most ${left}s)"
  timeout -s INT -k 15 $left "$NAMM" eval --backend "$BACKEND" --model "$model" --tasks "$tasks" \
      --memory "$memory" --samples "$SAMPLES" --workers "$WORKERS" --quiet \
      --out "$dir" "$@" 2>&1 | tee -a "$OUT/eval.log"
  local rc=${PIPESTATUS[0]}
  case $rc in
    0) return 0 ;;
    124|137) stopped=1; echo "deadline: $dir stopped (rc $rc); rerun to finish" ;;
    *) echo "namm eval failed for $dir (rc $rc)" ;;
  esac
  return 1
}

# tasks_at L TASK...: "t1:len=L,t2:len=L,...".
tasks_at() { local L=$1; shift; local t out=""; for t in "$@"; do out+="${out:+,}$t:len=$L"; done; echo "$out"; }

# seed DST SRC L TASK...: add to DST's journal SRC's samples of these tasks at length L that DST lacks (the full cache,
# the NAMM and baselines at the same budget then resume instead of running again; same model and
# setup, so run.json is the same).
seed() {
  local dst=$1 src=$2 L=$3; shift 3
  [ -f "$src/journal.jsonl" ] || return 0
  mkdir -p "$dst" && { [ -f "$dst/run.json" ] || cp "$src/run.json" "$dst/"; } || return 1
  python3 - "$dst/journal.jsonl" "$src/journal.jsonl" "$L" "$@" <<'PY'
import json, os, re, sys
dst, src, L, tasks = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
key = lambda d: (d["task"], d["id"], d["policy"], d.get("budget", ""))
have = set()
if os.path.exists(dst):
    for line in open(dst):
        try: have.add(key(json.loads(line)))
        except ValueError: pass
new = []
for line in open(src):
    try: d = json.loads(line)
    except ValueError: continue
    if d["task"].split(":")[0] in tasks and re.search(r":len=%s(:|$)" % L, d["task"]) and key(d) not in have:
        have.add(key(d)); new.append(line.rstrip("\n") + "\n")
with open(dst, "a") as f:
    f.writelines(new)
PY
}

# matched PREFIX MODEL: the NAMM at every length, then the baselines at its mean cache size.
matched() {
  local p=$1 model=$2 all="" L
  for L in $LENGTHS; do all+="${all:+,}$(tasks_at $L $TRAIN_TASKS $HELDOUT_TASKS)"; done
  run_eval "$WORK/$p-namm" "$model" "$all" "full,$nammspec" || return 1
  for L in $LENGTHS; do
    [ $stopped = 1 ] && return 1
    local b
    b=$(table --kv namm --length $L "$WORK/$p-namm/journal.jsonl") || { echo "no NAMM KV size at $L"; continue; }
    echo "$p: the NAMM keeps $b KV tokens per layer on average at $L tokens: baselines at --budget $b"
    echo "$b" > "$WORK/$p-namm/budget-$L"
    seed "$WORK/$p-L$L" "$WORK/$p-namm" $L $TRAIN_TASKS $HELDOUT_TASKS
    run_eval "$WORK/$p-L$L" "$model" "$(tasks_at $L $TRAIN_TASKS $HELDOUT_TASKS)" "full,$nammspec,$BASELINES" --budget "$b"
  done
}

for part in $PARTS; do
  case $part in
    a) unpack_model "$MODEL_A" && matched A "$MODEL_A" ;;
    b)
      [ $stopped = 1 ] && continue
      unpack_model "$MODEL_A" || continue
      budgets=$SWEEP_BUDGETS
      if [ -f "$WORK/A-namm/budget-$SWEEP_LEN" ]; then
        budgets+=",$(cat "$WORK/A-namm/budget-$SWEEP_LEN")"   # the matched-size runs resume from part a
        seed "$WORK/A-sweep" "$WORK/A-L$SWEEP_LEN" $SWEEP_LEN $SWEEP_TASKS
      fi
      seed "$WORK/A-sweep" "$WORK/A-namm" $SWEEP_LEN $SWEEP_TASKS
      run_eval "$WORK/A-sweep" "$MODEL_A" "$(tasks_at $SWEEP_LEN $SWEEP_TASKS)" "full,$nammspec,$BASELINES" --budgets "$budgets"
      ;;
    c) unpack_model "$MODEL_B" && matched B "$MODEL_B" ;;
    *) echo "unknown part $part (a, b or c)"; exit 2 ;;
  esac
done

# Tables, PNGs and the archive.
{
  echo "# NAMM evaluation ($(date -u +%F), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
  echo; echo "NAMM: $nammfile ($(sha256sum "$nammfile" | cut -c1-16)); $SAMPLES samples per task and length"
  for p in A B; do
    ls "$WORK/$p-namm/journal.jsonl" >/dev/null 2>&1 || continue
    name=$([ $p = A ] && echo "model A" || echo "model B (zero-shot)")
    echo; echo "## $name: full cache, the NAMM, baselines at the NAMM's mean cache size"
    table --pivot "$WORK/$p-namm" $(ls -d "$WORK/$p"-L* 2>/dev/null)
    echo; table "$WORK/$p-namm" $(ls -d "$WORK/$p"-L* 2>/dev/null)
  done
  if [ -f "$WORK/A-sweep/journal.jsonl" ]; then
    echo; echo "## model A at $SWEEP_LEN tokens: budget sweep"
    table --pivot "$WORK/A-sweep"; echo; table "$WORK/A-sweep"
  fi
} > "$OUT/tables.md" 2>&1
cat "$OUT/tables.md"
[ -f "$WORK/A-sweep/score_vs_cache.png" ] && cp "$WORK/A-sweep/score_vs_cache.png" "$OUT/sweep-score_vs_cache.png"
[ -f "$WORK/A-L$SWEEP_LEN/cache_per_layer.png" ] && cp "$WORK/A-L$SWEEP_LEN/cache_per_layer.png" "$OUT/A-cache_per_layer.png"
[ -f "$WORK/B-L$SWEEP_LEN/cache_per_layer.png" ] && cp "$WORK/B-L$SWEEP_LEN/cache_per_layer.png" "$OUT/B-cache_per_layer.png"
tar czf "$OUT/eval-namm.tgz" -C "$WORK" . && ls -l "$OUT"
[ $stopped = 1 ] && echo "NOT FINISHED: copy $OUT/eval-namm.tgz to .gpu/eval-namm.tgz and run the same command again"
echo "took $((SECONDS - start)) s"
exit 0
