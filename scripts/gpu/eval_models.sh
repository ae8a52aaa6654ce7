#!/usr/bin/env bash
# Full-cache accuracy of our base models on every built-in task generator at several lengths,
# on the GPU.
#
# Usage (repository root, device machine):
#   bash scripts/gpu/eval_models.sh [A B | NAME=DIR ...]
#
# Models: A is $MODEL_A (.gpu/model-a), B is $MODEL_B (.gpu/model-b); NAME=DIR names any other
# model directory (e.g. C=/tmp/models/model-c). Both have 8,192 positions:
# the 16k prompts are cut in the middle to 8,192 tokens minus the task's new tokens (namm eval's
# LongBench truncation; the tables say "cut to"), unless MAX_LENGTH is set (e.g. 16384, to run
# past the trained positions).
# Resumes like eval_namm.sh: .gpu/eval-models.tgz (an earlier $OUT/eval-models.tgz) is unpacked
# first, finished samples are skipped, and at the deadline everything is packed.
#
# Writes to $OUT (at most 5 files): eval-models.tgz (run directories models-A, models-B:
# journal.jsonl, results.json, run.json, PNGs), tables.md (per model: length x task scores, and
# the long table), eval.log, A-score_vs_cache.png, B-score_vs_cache.png.
set -uo pipefail
start=$SECONDS
WHICH=${*:-A B}
OUT=${OUT:-/tmp/out}
NAMM=${NAMM:-/tmp/namm}
MODEL_A=${MODEL_A:-.gpu/model-a}
MODEL_B=${MODEL_B:-.gpu/model-b}
LENGTHS=${LENGTHS:-2048 4096 8192 16384}
SAMPLES=${SAMPLES:-5}
TASKS=${TASKS:-}                          # default: every generator namm eval lists
MAX_LENGTH=${MAX_LENGTH:-0}               # 0: the model's max_position_embeddings
WORKERS=${WORKERS:-4}
DEADLINE=${DEADLINE:-570}
WORK=${WORK:-/tmp/eval-models}
RESUME=${RESUME:-.gpu/eval-models.tgz}
BACKEND=${BACKEND:-}

source scripts/gpu/lib.sh
mkdir -p "$OUT" "$WORK"
unpack_binary "$NAMM" || exit 1
if [ -f "$RESUME" ] && [ -z "$(ls -A "$WORK")" ]; then
  echo "resuming: unpacking $RESUME into $WORK"
  tar xzf "$RESUME" -C "$WORK" || exit 1
fi
if [ -z "$TASKS" ]; then
  # "(tasks: cwe, fwe, ...)" in the help text of namm eval.
  TASKS=$("$NAMM" eval --help | grep -o '(tasks: [^)]*)' | head -1 | sed 's/(tasks: //; s/)//; s/,//g')
  [ -n "$TASKS" ] || { echo "could not read the task list from namm eval --help"; exit 1; }
fi
if [ -z "$BACKEND" ]; then
  plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
  BACKEND=xla:$plugin
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
echo "tasks: $TASKS; lengths: $LENGTHS; $SAMPLES samples each"

stopped=0
for m in $WHICH; do
  case $m in A) model=$MODEL_A ;; B) model=$MODEL_B ;; *=*) model=${m#*=}; m=${m%%=*} ;; *) echo "unknown model $m (A, B or NAME=DIR)"; exit 2 ;; esac
  unpack_model "$model" || continue
  specs=""
  for L in $LENGTHS; do for t in $TASKS; do specs+="${specs:+,}$t:len=$L"; done; done
  left=$((DEADLINE - (SECONDS - start) - 25))
  if [ $left -lt 30 ]; then stopped=1; echo "deadline: skipping model $m"; break; fi
  echo "== model $m ($model), at most ${left}s"
  timeout -s INT -k 15 $left "$NAMM" eval --backend "$BACKEND" --model "$model" --tasks "$specs" \
      --memory full --samples "$SAMPLES" --workers "$WORKERS" --max-length "$MAX_LENGTH" --quiet \
      --out "$WORK/models-$m" 2>&1 | tee -a "$OUT/eval.log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) ;;
    124|137) stopped=1; echo "deadline: model $m stopped (rc $rc)"; break ;;
    *) echo "namm eval failed for model $m (rc $rc)" ;;
  esac
done

{
  echo "# Full-cache accuracy of the base models ($(date -u +%F), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1))"
  for m in $WHICH; do
    m=${m%%=*}
    [ -d "$WORK/models-$m" ] || continue
    echo; echo "## model $m"
    python3 scripts/results_table.py --by-length "$WORK/models-$m"
    echo; python3 scripts/results_table.py "$WORK/models-$m"
  done
} > "$OUT/tables.md" 2>&1
cat "$OUT/tables.md"
for m in $WHICH; do
  m=${m%%=*}
  [ -f "$WORK/models-$m/score_vs_cache.png" ] && cp "$WORK/models-$m/score_vs_cache.png" "$OUT/$m-score_vs_cache.png"
done
tar czf "$OUT/eval-models.tgz" -C "$WORK" . && ls -l "$OUT"
[ $stopped = 1 ] && echo "NOT FINISHED: copy $OUT/eval-models.tgz to .gpu/eval-models.tgz and run the same command again"
echo "took $((SECONDS - start)) s"
exit 0
