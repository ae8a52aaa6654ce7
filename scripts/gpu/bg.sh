#!/usr/bin/env bash
# Runs a long job on the device machine past one command's 10-minute limit: `start` detaches
# it (a new process session outlives the command that started it, while the machine is held),
# `wait` follows its log for a while and says whether it has finished. Keep calling `wait`
# from the next commands (each call keeps the machine held) until it reports the end.
#
# Usage (repository root, device machine):
#   bash scripts/gpu/bg.sh start NAME COMMAND...   detach COMMAND; log /tmp/bg/NAME.log
#   bash scripts/gpu/bg.sh wait NAME SECONDS        follow the log up to SECONDS; exit 0 when
#                                                   the job has ended (its status in NAME.rc),
#                                                   3 while it runs, 4 when there is no such job
set -uo pipefail
dir=/tmp/bg
mkdir -p $dir
case "${1:-}" in
start)
  name=${2:?usage: bg.sh start NAME COMMAND...}; shift 2
  [ -f $dir/$name.pid ] && kill -0 "$(cat $dir/$name.pid)" 2>/dev/null && { echo "job $name is running"; exit 1; }
  rm -f $dir/$name.rc
  setsid nohup bash -c '"$@"; echo $? > '"$dir/$name.rc" bash "$@" > $dir/$name.log 2>&1 < /dev/null &
  echo $! > $dir/$name.pid
  echo "started $name (pid $(cat $dir/$name.pid)); log $dir/$name.log" ;;
wait)
  name=${2:?usage: bg.sh wait NAME SECONDS}; secs=${3:?usage: bg.sh wait NAME SECONDS}
  [ -f $dir/$name.pid ] || { echo "no job $name"; exit 4; }
  end=$((SECONDS + secs))
  while [ ! -f $dir/$name.rc ] && [ $SECONDS -lt $end ]; do sleep 5; done
  tail -n 40 $dir/$name.log
  if [ -f $dir/$name.rc ]; then echo "job $name ended with status $(cat $dir/$name.rc)"; exit 0; fi
  echo "job $name still running"; exit 3 ;;
*) echo "usage: bg.sh start NAME COMMAND... | wait NAME SECONDS"; exit 2 ;;
esac
