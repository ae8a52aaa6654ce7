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

# unpack_xz NAME...: .gpu/NAME.xz (a binary packed by stage.sh or by hand) to the executable /tmp/NAME.
unpack_xz() {
  local n
  for n in "$@"; do
    python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" .gpu/$n.xz /tmp/$n \
      && chmod +x /tmp/$n || return 1
  done
}
