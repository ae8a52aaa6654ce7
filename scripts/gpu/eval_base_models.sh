#!/usr/bin/env bash
# The base-model table of docs/models.md on the device: a new model's full-cache scores on
# the reading tasks at 4k-32k, its other tasks at 4k and 8k, and a reference model's at 4k
# for comparison, each part under its own deadline (scripts/gpu/eval_models.sh).
#
# Usage (repository root, device machine; best detached with scripts/gpu/bg.sh):
#   bash scripts/gpu/eval_base_models.sh NEW=DIR [REF=DIR] [RESULT]
# e.g. bash scripts/gpu/eval_base_models.sh C=/tmp/models/model-c A=.gpu/model-a /tmp/result/eval
# Settings: SAMPLES (20), SECONDS_MAIN (330), SECONDS_OTHER (150), SECONDS_REF (120).
# Writes RESULT/{main,other,ref}/tables.md and eval-models.tgz.
set -uo pipefail
new=${1:?usage: eval_base_models.sh NEW=DIR [REF=DIR] [RESULT]}; ref=${2:-}; result=${3:-/tmp/result/eval}
SAMPLES=${SAMPLES:-20}
reading="niah_single niah_multikey niah_multivalue records"
other="facts vartrack passage_retrieval qa fwe cwe"
run() { # part deadline lengths tasks models...
  local part=$1 deadline=$2 lengths=$3 tasks=$4; shift 4
  SAMPLES=$SAMPLES LENGTHS="$lengths" TASKS="$tasks" DEADLINE=$deadline WORK=/tmp/eval-$part \
    OUT=$result/$part bash scripts/gpu/eval_models.sh "$@" 2>&1 | grep -v -E 'cuda_executor|Source Location|^external' | tail -n 60
}
run main "${SECONDS_MAIN:-330}" "4096 8192 16384 32768" "$reading" "$new"
run other "${SECONDS_OTHER:-150}" "4096 8192" "$other" "$new"
[ -n "$ref" ] && run ref "${SECONDS_REF:-120}" "4096" "$reading $other" "$ref"
exit 0
