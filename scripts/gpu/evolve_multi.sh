#!/usr/bin/env bash
# Evolve a NAMM on one host of several GPUs: the coordinator (`namm evolve --nats embedded
# --workers 0`) and one `namm worker --gpu i` per GPU, all on this host.
#
# Usage (repository root):
#   bash scripts/gpu/evolve_multi.sh OUT NGPUS [namm evolve arguments...]
#   e.g. bash scripts/gpu/evolve_multi.sh /tmp/out 4 --stage niah_multikey:len=4096 \
#          --generations 5 --population 32 --samples 8 --batch 4
#
# The evolve arguments are given to the coordinator as they are (give no --out, --nats,
# --workers, --model, --backend nor --gpu: the script sets them); --batch, --chunk and --dtype
# also go to every worker. With an xla backend (the default), worker i runs with --gpu i and
# the coordinator with --gpu 0 (it computes the normalisation statistics and must run on the
# workers' backend and dtype for their results to be the same). With BACKEND=go the NGPUS
# workers are CPU processes without --gpu (to check the script on a machine without a GPU).
#
# Environment:
#   NAMM     the binary (default /tmp/namm, unpacked from .gpu/namm.xz or .gz if missing)
#   MODEL    model directory (default .gpu/model-a), given to the coordinator and the workers
#   BACKEND  go, or xla:PLUGIN (default: the XLA CUDA plugin of the machine's JAX)
#   KILL_AT  SECONDS: kill -9 the last worker this long after the workers start (fault test:
#            its unacknowledged jobs go to the others after --ack-wait)
#   DEADLINE seconds the coordinator may run (default 570)
#
# Writes to OUT: run/ (the run directory: checkpoints, evolve.jsonl, best.namm),
# coordinator.log, worker-I.log (one per worker), killed.txt (with KILL_AT: which worker, when).
set -uo pipefail
out=${1:?usage: evolve_multi.sh OUT NGPUS [namm evolve arguments...]}
n=${2:?usage: evolve_multi.sh OUT NGPUS [namm evolve arguments...]}
shift 2
case $n in ''|*[!0-9]*|0) echo "evolve_multi.sh: NGPUS must be an integer >= 1, got '$n'" >&2; exit 2 ;; esac
case ${KILL_AT:-} in *[!0-9.]*) echo "evolve_multi.sh: KILL_AT must be a number of seconds, got '$KILL_AT'" >&2; exit 2 ;; esac
for a in "$@"; do
  case $a in --out|--out=*|--nats|--nats=*|--workers|--workers=*|--model|--model=*|--backend|--backend=*|--gpu|--gpu=*)
    echo "evolve_multi.sh: $a is set by the script; leave it out of the evolve arguments" >&2; exit 2 ;;
  esac
done
NAMM=${NAMM:-/tmp/namm}
MODEL=${MODEL:-.gpu/model-a}
DEADLINE=${DEADLINE:-570}
source scripts/gpu/lib.sh
unpack_binary "$NAMM" || exit 1
unpack_model "$MODEL" || exit 1
if [ -z "${BACKEND:-}" ]; then
  device_env
  BACKEND=xla:$PLUGIN
fi
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
gpu_flag() { [[ $BACKEND == xla* ]] && echo "--gpu $1"; }
if [[ $BACKEND == xla* ]]; then
  have=$(nvidia-smi -L 2>/dev/null | wc -l)
  [ "$have" -ge "$n" ] || { echo "evolve_multi.sh: $n GPUs asked for, nvidia-smi lists $have" >&2; exit 2; }
fi
# The flags that shape a job's computation go to the workers too.
evolve_args=("$@")
wflags=()
while [ $# -gt 0 ]; do
  case $1 in
    --batch|--chunk|--dtype) wflags+=("$1" "$2") ;;
    --batch=*|--chunk=*|--dtype=*) wflags+=("$1") ;;
  esac
  shift
done
mkdir -p "$out/run"
rm -f "$out"/worker-*.log "$out/killed.txt"

pids=()
stop_workers() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  pids=()
}
trap 'stop_workers; [ -n "${coord:-}" ] && kill -TERM "$coord" 2>/dev/null' EXIT

echo "coordinator: $BACKEND $(gpu_flag 0); $n workers; run directory $out/run"
# shellcheck disable=SC2046
timeout -s TERM -k 30 "$DEADLINE" "$NAMM" evolve --model "$MODEL" --backend "$BACKEND" $(gpu_flag 0) \
    --nats embedded --workers 0 --quiet --out "$out/run" "${evolve_args[@]}" >"$out/coordinator.log" 2>&1 &
coord=$!
url=
for _ in $(seq 600); do
  url=$(grep -o -m1 'embedded NATS server at nats://[0-9.:]*' "$out/coordinator.log" | awk '{print $NF}')
  [ -n "$url" ] && break
  kill -0 "$coord" 2>/dev/null || break
  sleep 0.5
done
if [ -z "$url" ]; then
  echo "evolve_multi.sh: the coordinator printed no NATS address; its log:" >&2
  tail -20 "$out/coordinator.log" >&2
  exit 1
fi
echo "coordinator's NATS server: $url"
for ((i = 0; i < n; i++)); do
  # shellcheck disable=SC2046
  "$NAMM" worker --nats "$url" --model "$MODEL" --backend "$BACKEND" $(gpu_flag $i) "${wflags[@]}" \
      >"$out/worker-$i.log" 2>&1 &
  pids+=($!)
done
if [ -n "${KILL_AT:-}" ]; then
  (sleep "$KILL_AT"; last=$((n - 1))
   if kill -9 "${pids[$last]}" 2>/dev/null; then
     echo "killed worker $last (pid ${pids[$last]}) ${KILL_AT}s after the workers started" | tee "$out/killed.txt"
   fi) &
  killer=$!
fi
wait "$coord"
rc=$?
coord=
[ -n "${killer:-}" ] && kill "$killer" 2>/dev/null
stop_workers
case $rc in
  0) echo "evolution finished" ;;
  124|137) echo "stopped at the time limit (rc $rc); rerun the same command to resume from the last checkpoint" ;;
  *) echo "namm evolve failed (rc $rc):"; tail -5 "$out/coordinator.log" ;;
esac
grep -h -E "waiting for jobs|jobs done|refus|rror" "$out"/worker-*.log | head -40
exit $rc
