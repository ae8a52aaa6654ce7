#!/usr/bin/env bash
# Session 6, call 6 (on the device from the repository root, OUT set): TestHolesMatchGatherXLA on
# model A after call 5, now tolerant of a near tie on a GPU.
set -uo pipefail
source scripts/gpu/lib.sh
unpack_xz engine_xla.test
unpack_model .gpu/model-a
plugin=$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so
(cd engine && GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0 NAMM_XLA_PLUGIN=$plugin NAMM_TEST_MODEL=../.gpu/model-a timeout 200 \
  /tmp/engine_xla.test -test.run '^TestHolesMatchGatherXLA$' -test.v > $OUT/HolesMatchGatherXLA.txt 2>&1)
echo "exit $?"
grep -E '^(---|ok|FAIL|PASS)|    --- |hostattn_test.go|xla_test.go|^panic' $OUT/HolesMatchGatherXLA.txt | cut -c1-300 | head -20
