#!/usr/bin/env bash
# Session 7, call 1 (on the device from the repository root, OUT set): is Nsight Systems there?
# If so, kernel summaries of an 8k prefill on the Llama-3-8B shape, full cache against an all-zero
# NAMM (128-token chunks, prefix graphs), to find where the NAMM's extra pass time goes.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz namm
plugin=$(xla_plugin)
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu.txt
nsys=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys /usr/lib/nsight-systems/bin/nsys 2>/dev/null | head -1)
echo "nsys: ${nsys:-none}" | tee -a $OUT/gpu.txt
ls -d /usr/local/cuda* /opt/nvidia 2>/dev/null | tee -a $OUT/gpu.txt
python3 -c "import nvidia, os; print(os.listdir(os.path.dirname(nvidia.__path__[0]+'/x')))" 2>&1 | tee -a $OUT/gpu.txt
(cd /tmp && /tmp/namm namm-file init --zero --out /tmp/zero.namm >/dev/null)
for mem in full namm:/tmp/zero.namm; do
  tag=$(echo "$mem" | cut -c1-4)
  cmd=(/tmp/namm bench --shape llama3-8b --backend "xla:$plugin" --context 8192 --decode 16 --profile --prefix-graphs --memory "$mem" --json)
  if [ -n "$nsys" ]; then
    timeout 280 "$nsys" profile -o /tmp/p_$tag -f true --trace cuda --sample none --cpuctxsw none "${cmd[@]}" \
      > $OUT/bench_$tag.json 2>/tmp/err_$tag || tail -5 /tmp/err_$tag
    "$nsys" stats -q --report cuda_gpu_kern_sum --format csv /tmp/p_$tag.nsys-rep 2>/dev/null | head -80 > $OUT/kern_$tag.csv
    "$nsys" stats -q --report cuda_gpu_trace --format csv /tmp/p_$tag.nsys-rep 2>/dev/null | xz -T4 > $OUT/trace_$tag.csv.xz
  else
    timeout 280 "${cmd[@]}" > $OUT/bench_$tag.json 2>/tmp/err_$tag || tail -5 /tmp/err_$tag
  fi
done
ls -la $OUT
