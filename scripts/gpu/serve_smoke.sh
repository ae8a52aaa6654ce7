#!/usr/bin/env bash
# namm serve on the GPU: several sessions at once on the XLA backend, loaded by bench-serve, and
# a greedy completion over HTTP against `namm generate` of the same prompt.
#
# Usage (repository root, device machine):
#   bash scripts/gpu/serve_smoke.sh OUTDIR [MODEL] [SLOTS] [CLIENTS] [SECONDS]
#   MODEL   a model directory (default .gpu/model-a, unpacked from .gpu/model-a.tgz)
#   SLOTS   the server's --slots (default 4); CLIENTS bench-serve's --clients (default 8);
#   SECONDS bench-serve's --duration per run (default 20)
# Needs .gpu/namm.xz (scripts/gpu/stage.sh pack). Writes OUTDIR/serve.log (the server's stderr),
# OUTDIR/parity.txt (the HTTP completion and generate's text, and the verdict) and
# OUTDIR/bench.json (bench-serve --json: failures, p50/p99 latency, tokens/s for one client and
# for CLIENTS, and their ratio), and prints the verdicts. To try it elsewhere: NAMM=path/to/namm
# BACKEND=go bash scripts/gpu/serve_smoke.sh OUTDIR testdata/models/tiny-llama 2 4 5
set -uo pipefail
out=${1:?usage: serve_smoke.sh OUTDIR [MODEL] [SLOTS] [CLIENTS] [SECONDS]}
MODEL=${2:-.gpu/model-a}
SLOTS=${3:-4}
CLIENTS=${4:-8}
SECONDS_EACH=${5:-20}
source scripts/gpu/lib.sh
mkdir -p "$out"
if [ -z "${NAMM:-}" ]; then binaries namm || exit 1; fi
NAMM=${NAMM:-/tmp/namm}
if [ -z "${BACKEND:-}" ]; then device_env; BACKEND="xla:$PLUGIN"; fi
backend=$BACKEND
[[ $MODEL == .gpu/* ]] && { unpack_model "$MODEL" || exit 1; }

"$NAMM" serve --model "$MODEL" --backend "$backend" --addr 127.0.0.1:0 --slots "$SLOTS" 2>"$out/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
url=""
for _ in $(seq 600); do
  url=$(sed -n 's/^namm: serving .* on \(http:[^ ]*\).*/\1/p' "$out/serve.log" 2>/dev/null)
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.5
done
[ -n "$url" ] || { echo "namm serve did not start:"; tail -20 "$out/serve.log"; exit 1; }
echo "server: $url"

prompt="It was a bright cold day in April, and"
python3 - "$url" "$prompt" "$MODEL" "$backend" "$NAMM" <<'PY' 2>&1 | tee "$out/parity.txt" | tail -1
import json, subprocess, sys, urllib.request
url, prompt, model, backend, namm = sys.argv[1:6]
req = urllib.request.Request(url + "/v1/completions", json.dumps(
    {"prompt": prompt, "max_tokens": 16, "temperature": 0}).encode(), {"Content-Type": "application/json"})
served = json.load(urllib.request.urlopen(req, timeout=600))["choices"][0]["text"]
gen = json.loads(subprocess.run([namm, "generate", "--model", model, "--backend", backend, "--prompt", prompt,
                                 "--max-new-tokens", "16", "--json"], capture_output=True, text=True, check=True).stdout)["text"]
print("served:  ", repr(served))
print("generate:", repr(gen))
print("parity:", "OK" if served == gen else "DIFFERENT")
PY

"$NAMM" bench-serve --url "$url" --clients "$CLIENTS" --duration "${SECONDS_EACH}s" --max-tokens 32 --json >"$out/bench.json" \
  && python3 -c "
import json, sys
b = json.load(open(sys.argv[1]))
for k in ('one', 'many'):
    r = b[k]
    print(f\"{r['clients']:3d} clients: {r['requests']} requests, {r['failures']} failed, {r['tokens_per_second']:.1f} tokens/s, p50 {r['p50_seconds']:.3f} s, p99 {r['p99_seconds']:.3f} s\")
print(f\"speedup {b['speedup']:.2f}x\")
" "$out/bench.json"
