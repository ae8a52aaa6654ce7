# Shared by the device scripts (source it from the repository root).

# unpack_model DIR: a model may travel as DIR.tgz (tar czf .gpu/model-a.tgz -C PARENT model-a:
# bf16 weights shrink ~20%, which can decide whether a call fits the 64 MiB that travel); it is
# unpacked beside it.
unpack_model() {
  local d=$1
  if [ ! -f "$d/config.json" ] && [ -f "$d.tgz" ]; then
    echo "unpacking $d.tgz"; tar xzf "$d.tgz" -C "$(dirname "$d")" || return 1
  fi
  [ -f "$d/config.json" ] || { echo "no model at $d (nor $d.tgz)"; return 1; }
}

# unpack_binary PATH: the namm binary travels as .gpu/namm.xz (scripts/gpu/stage.sh) or
# .gpu/namm.gz; it is unpacked to PATH unless PATH is already an executable.
unpack_binary() {
  local b=$1
  [ -x "$b" ] && return 0
  if [ -f .gpu/namm.xz ]; then
    python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open('.gpu/namm.xz'), open(sys.argv[1], 'wb'))" "$b"
  else gunzip -c .gpu/namm.gz > "$b"; fi && chmod +x "$b"
}

# unpack_xz NAME...: .gpu/NAME.xz (packed by stage.sh) to the executable /tmp/NAME.
unpack_xz() {
  local n
  for n in "$@"; do
    python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" .gpu/$n.xz /tmp/$n \
      && chmod +x /tmp/$n || return 1
  done
}

# tokenizer_dir DIR: prints a directory with DIR's tokenizer files and a plain tokenizer.json:
# DIR itself, or /tmp/tok-NAME where DIR holds tokenizer.json.xz (as .gpu/mistral-7b travels).
tokenizer_dir() {
  local d=${1%/}
  if [ -f "$d/tokenizer.json" ]; then echo "$d"; return 0; fi
  [ -f "$d/tokenizer.json.xz" ] || { echo "no tokenizer.json(.xz) in $d" >&2; return 1; }
  local t=/tmp/tok-$(basename "$d")
  mkdir -p "$t" && cp "$d"/tokenizer_config.json "$t"/ 2>/dev/null
  python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$d/tokenizer.json.xz" "$t/tokenizer.json" \
    && echo "$t"
}

# xla_plugin: the path of the PJRT CUDA plugin that jax installed on the device.
xla_plugin() {
  echo "$(python3 -c 'import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))')/xla_cuda_plugin.so"
}

# build_ktrace: scripts/gpu/ktrace.c -> /tmp/ktrace.so, against the device's CUPTI (CUDA 13),
# with the newest kernel record type its headers define.
build_ktrace() {
  local cupti=/usr/local/cuda-13.0/targets/x86_64-linux lib rec
  lib=$(ls $cupti/lib/libcupti.so* | head -1)
  rec=$(grep -oh 'CUpti_ActivityKernel[0-9]*;' $cupti/include/cupti_activity*.h | tr -d ';' | sort -V | tail -1)
  gcc -O2 -shared -fPIC -o /tmp/ktrace.so scripts/gpu/ktrace.c -I$cupti/include -DKREC=$rec "$lib" -lpthread -Wl,-rpath,"$(dirname "$lib")"
}

# device_env: the settings every namm command on the device needs (never auto-install a plugin;
# go-xla's CUDA check writes a wrong path into XLA_FLAGS); sets PLUGIN to the XLA plugin's path.
# XLA_CACHE=1 turns on the persistent cache of compiled executables in /tmp/namm-xla-cache
# (third_party/go-xla/NAMM_PATCH.md; off by default until measured on a GPU).
device_env() {
  export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
  if [ "${XLA_CACHE:-}" = 1 ]; then export NAMM_XLA_CACHE_DIR=/tmp/namm-xla-cache; fi
  PLUGIN=$(xla_plugin)
}

# binaries NAME...: the namm builds to run, /tmp/NAME each, unpacked from .gpu/NAME.xz where
# /tmp/NAME is missing (stage.sh pack writes .gpu/namm.xz; stage.sh pack-rev REV NAME others).
binaries() {
  local n
  for n in "$@"; do
    [ -x /tmp/$n ] && continue
    [ -f .gpu/$n.xz ] || { echo "no /tmp/$n nor .gpu/$n.xz (scripts/gpu/stage.sh pack)" >&2; return 1; }
    unpack_xz $n || return 1
  done
}

# zero_namm: /tmp/zero.namm, an all-zero NAMM (evicts nothing; its cost is the NAMM's own).
zero_namm() {
  [ -f /tmp/zero.namm ] || (cd /tmp && "${1:-/tmp/namm}" namm-file init --zero --out /tmp/zero.namm >/dev/null)
}

# quiet_errors: XLA's stderr without the CUDA executor's chatter, for a command's last lines.
quiet_errors() { grep -v -E 'cuda_executor|Source Location|^external|^$' "$@"; }
