#!/usr/bin/env bash
# Session 6, call 3 (on the device from the repository root, OUT set): the XLA tests on the tiny
# Llama fixture after the session's engine refactor (layerExec lost its attend form; the pure-Go
# backend's layers moved to the host): the fused pass against the per-layer graphs, the NAMM's
# in-graph features against the host's, and compiling ahead.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz engine_xla.test
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
(cd engine && GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0 NAMM_XLA_PLUGIN=$plugin timeout 450 \
  /tmp/engine_xla.test -test.run 'XLA' -test.v > $OUT/xla_test.txt 2>&1)
echo "exit $?"
grep -E '^(---|ok|FAIL|PASS|=== RUN)|logits within|compiled ahead|not compiled|differ' $OUT/xla_test.txt | head -40
