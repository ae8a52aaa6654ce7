#!/usr/bin/env bash
# The XLA tests on the GPU machine, each in its own process (each test's engine takes most of the
# GPU's memory), and the fixtures' greedy parity with transformers on XLA in float32.
#
# Usage (repository root, device machine): bash scripts/gpu/xla_test.sh OUTDIR [TEST...]
#   TEST: a test name of engine/xla_test.go or namm/graph_xla_test.go, or "greedy" (every
#   fixture's golden prompts, greedy tokens equal to transformers'); default: all of them.
# Needs .gpu/engine_xla.test.xz and .gpu/namm_xla.test.xz (scripts/gpu/stage.sh pack) and, for
# greedy, .gpu/namm.xz and testdata/models. MODEL (default testdata/models/tiny-llama) is the
# model of the engine's tests (model A: MODEL=.gpu/model-a). Writes OUTDIR/TEST.txt each and
# prints the verdicts.
set -uo pipefail
out=${1:?usage: xla_test.sh OUTDIR [TEST...]}; shift
tests=${*:-TestFusedPassMatchesLayersXLA TestBatchMatchesAloneXLA TestBatchMatchesAloneFusedXLA TestNAMMGraphFeaturesMatchHostXLA TestPrecompileCoversPrefillXLA TestHolesMatchGatherXLA TestScorerXLAMatchesGo greedy}
MODEL=${MODEL:-testdata/models/tiny-llama}
source scripts/gpu/lib.sh
mkdir -p "$out"
device_env
case $MODEL in /*) model=$MODEL ;; *) model=$PWD/$MODEL ;; esac
[[ $MODEL == .gpu/* ]] && { unpack_model "$MODEL" || exit 1; }
for t in $tests; do
  case $t in
  greedy)
    binaries namm || continue
    for m in tiny-llama tiny-mistral tiny-qwen2; do
      python3 - "$m" "$PLUGIN" <<'PY' 2>&1 | tee -a "$out/greedy.txt" | tail -1
import json, subprocess, sys
m, plugin = sys.argv[1], sys.argv[2]
g = json.load(open(f"testdata/models/{m}/golden.json"))
ok = 0
for p in g["prompts"]:
    r = subprocess.run(["/tmp/namm", "generate", "--model", f"testdata/models/{m}", "--backend", "xla:" + plugin,
                        "--dtype", "f32", "--prompt", p["text"], "--max-new-tokens", str(len(p["greedy"])), "--json"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(m, "ERROR", r.stderr[-2000:]); continue
    got = json.loads(r.stdout)["ids"]
    ok += got == p["greedy"]
    if got != p["greedy"]:
        print(m, "MISMATCH", got, p["greedy"])
print(m, f"greedy parity on xla f32: {ok}/{len(g['prompts'])}")
PY
    done ;;
  TestScorerXLA*) binaries namm_xla.test || continue
    (cd namm && NAMM_XLA_PLUGIN=$PLUGIN timeout 200 /tmp/namm_xla.test -test.run "^$t\$" -test.v 2>&1 | quiet_errors > "$out/$t.txt")
    grep -E '^(---|ok|FAIL|PASS)|    --- |_test.go|^panic' "$out/$t.txt" | cut -c1-300 | head -8 ;;
  *) binaries engine_xla.test || continue
    (cd engine && NAMM_XLA_PLUGIN=$PLUGIN NAMM_TEST_MODEL=$model timeout 200 /tmp/engine_xla.test -test.run "^$t\$" -test.v 2>&1 | quiet_errors > "$out/$t.txt")
    grep -E '^(---|ok|FAIL|PASS)|    --- |_test.go|^panic' "$out/$t.txt" | cut -c1-300 | head -8 ;;
  esac
done
