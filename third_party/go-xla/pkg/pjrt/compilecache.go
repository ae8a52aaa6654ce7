package pjrt

// namm patch (third_party/go-xla/NAMM_PATCH.md): the files of the persistent cache of compiled
// executables that CompileConfig.Done consults when NAMM_XLA_CACHE_DIR is set. This file has no cgo:
// what PJRT serializes is an opaque payload here, so the layer is tested without any plugin.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

const (
	// EnvCompileCacheDir names the directory of the persistent cache of compiled executables.
	// Unset or empty, the cache is off and every program is compiled.
	EnvCompileCacheDir = "NAMM_XLA_CACHE_DIR"

	// EnvCompileCacheMaxMB caps the cache's entries, in MiB (default 2048): after each write the
	// least recently used entries are removed until the rest fit.
	EnvCompileCacheMaxMB = "NAMM_XLA_CACHE_MAX_MB"

	defaultCompileCacheMaxMB = 2048

	// compileCacheVersion enters every key and every entry's header: changing how either is made
	// makes all earlier entries misses.
	compileCacheVersion uint32 = 1

	compileCacheSuffix    = ".xla"
	compileCacheTmpPrefix = ".tmp-"

	// compileCacheStaleTmp is the age after which a temporary file is taken for one a crashed writer
	// left, and removed by eviction.
	compileCacheStaleTmp = time.Hour
)

// compileCacheMagic opens every entry file.
var compileCacheMagic = [8]byte{'N', 'A', 'M', 'M', 'X', 'L', 'A', 'C'}

// Entry file layout, integers little-endian:
//
//	magic    [8]byte   "NAMMXLAC"
//	version  uint32    compileCacheVersion
//	key      [32]byte  the entry's key (its file name, in hex)
//	length   uint64    payload bytes
//	checksum [32]byte  SHA-256 of the payload
//	payload  [length]byte, the executable as PJRT serialized it
const compileCacheHeaderSize = 8 + 4 + 32 + 8 + 32

// compileCacheKey is everything a compiled executable depends on that the process can see: the
// plugin (its file and what it reports), the devices, XLA's flags, the program and the compile
// options. A plugin refuses executables serialized by another build, so every piece of its
// identity enters the key; what cannot be seen (say, a driver update under the same plugin) is left
// to the deserialization failing, which drops the entry.
type compileCacheKey struct {
	PluginName       string
	PluginPath       string
	PluginFile       string         // size and modification time of the plugin's file, if it has one
	PluginAPIVersion string         // the PJRT C API version the plugin reports, "major.minor"
	PluginAttributes map[string]any // Plugin.Attributes (xla_version, stablehlo versions, ...)
	Platform         string         // Client.Platform
	PlatformVersion  string         // Client.PlatformVersion
	DeviceKinds      []string       // one per addressable device, in order: their count enters too
	XLAFlags         string         // $XLA_FLAGS, read by XLA inside the plugin
	ProgramFormat    string         // "mlir" or "hlo"
	Program          []byte
	CompileOptions   []byte // the CompileOptionsProto, deterministically serialized
}

// Sum is the key's SHA-256. Every field is written with its length, so no two different keys
// hash the same bytes.
//
// A textual StableHLO program's module name is left out: gomlx names a graph after its Exec and
// the count of shapes the Exec had met before it ("...#3"), so the same program would get another
// name, and another key, whenever a process meets its graphs in another order (as concurrent
// compilation ahead does). The name only labels the executable.
func (k *compileCacheKey) Sum() [32]byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	str := func(s string) { field([]byte(s)) }

	str(fmt.Sprintf("namm-xla-compile-cache v%d", compileCacheVersion))
	str(k.PluginName)
	str(k.PluginPath)
	str(k.PluginFile)
	str(k.PluginAPIVersion)
	names := make([]string, 0, len(k.PluginAttributes))
	for name := range k.PluginAttributes {
		names = append(names, name)
	}
	slices.Sort(names)
	str(strconv.Itoa(len(names)))
	for _, name := range names {
		str(name)
		str(fmt.Sprintf("%T=%v", k.PluginAttributes[name], k.PluginAttributes[name]))
	}
	str(k.Platform)
	str(k.PlatformVersion)
	str(strconv.Itoa(len(k.DeviceKinds)))
	for _, kind := range k.DeviceKinds {
		str(kind)
	}
	str(k.XLAFlags)
	str(k.ProgramFormat)
	if k.ProgramFormat == "mlir" {
		field(withoutModuleName(k.Program))
	} else {
		field(k.Program)
	}
	field(k.CompileOptions)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// withoutModuleName returns a textual MLIR program without the name of its module ("module @name"
// becomes "module @"); anything else (bytecode, no module header) is returned as it is.
func withoutModuleName(program []byte) []byte {
	const header = "module @"
	start := bytes.Index(program, []byte(header))
	if start < 0 || len(bytes.TrimSpace(program[:start])) != 0 {
		return program
	}
	nameStart := start + len(header)
	nameEnd := nameStart
	for nameEnd < len(program) && isIdentifierByte(program[nameEnd]) {
		nameEnd++
	}
	out := make([]byte, 0, len(program)-(nameEnd-nameStart))
	out = append(out, program[:nameStart]...)
	return append(out, program[nameEnd:]...)
}

func isIdentifierByte(c byte) bool {
	return c == '_' || c == '$' || c == '.' || c == '-' ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// pluginFileIdentity describes the plugin's file by size and modification time, so a plugin
// replaced in place at the same path makes new keys. It is "" when the path is no file.
func pluginFileIdentity(path string) string {
	info, err := os.Stat(path)
	if err != nil || !info.Mode().IsRegular() {
		return ""
	}
	return fmt.Sprintf("%d bytes, modified %s", info.Size(), info.ModTime().UTC().Format(time.RFC3339Nano))
}

// compileCache is a directory of entries, one file per key.
type compileCache struct {
	dir      string
	maxBytes int64
}

// compileCacheFromEnv returns the cache $NAMM_XLA_CACHE_DIR names, or nil when it is unset.
func compileCacheFromEnv() *compileCache {
	dir := os.Getenv(EnvCompileCacheDir)
	if dir == "" {
		return nil
	}
	maxMB := int64(defaultCompileCacheMaxMB)
	if s := os.Getenv(EnvCompileCacheMaxMB); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			klog.Warningf("$%s=%q is not a positive number of MiB: using %d", EnvCompileCacheMaxMB, s, defaultCompileCacheMaxMB)
		} else {
			maxMB = v
		}
	}
	return &compileCache{dir: dir, maxBytes: maxMB << 20}
}

// compileCacheConfig is the cache of this process, read from the environment once.
var compileCacheConfig = sync.OnceValue(compileCacheFromEnv)

// path is the entry file of key.
func (c *compileCache) path(key [32]byte) string {
	return filepath.Join(c.dir, hex.EncodeToString(key[:])+compileCacheSuffix)
}

// get returns key's payload, after checking the entry's header and checksum. A missing entry is
// a miss; an entry that fails a check is removed and is a miss too. A hit refreshes the entry's
// modification time, which eviction reads as its last use.
func (c *compileCache) get(key [32]byte) ([]byte, bool) {
	path := c.path(key)
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	payload, err := readCompileCacheEntry(f, key)
	if err != nil {
		klog.V(1).Infof("compile cache: dropping %s: %v", path, err)
		c.removeIfSame(path, f)
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(path, now, now)
	return payload, true
}

// readCompileCacheEntry reads and checks an entry: magic, version, key, exact length, checksum.
func readCompileCacheEntry(f *os.File, key [32]byte) ([]byte, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var header [compileCacheHeaderSize]byte
	if _, err := io.ReadFull(f, header[:]); err != nil {
		return nil, fmt.Errorf("short header: %w", err)
	}
	h := header[:]
	if !bytes.Equal(h[:8], compileCacheMagic[:]) {
		return nil, fmt.Errorf("bad magic %q", h[:8])
	}
	h = h[8:]
	if v := binary.LittleEndian.Uint32(h); v != compileCacheVersion {
		return nil, fmt.Errorf("version %d, want %d", v, compileCacheVersion)
	}
	h = h[4:]
	if !bytes.Equal(h[:32], key[:]) {
		return nil, fmt.Errorf("entry of another key")
	}
	h = h[32:]
	length := binary.LittleEndian.Uint64(h)
	h = h[8:]
	if want := uint64(info.Size()) - compileCacheHeaderSize; length != want {
		return nil, fmt.Errorf("header says %d payload bytes, the file holds %d", length, want)
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(f, payload); err != nil {
		return nil, fmt.Errorf("short payload: %w", err)
	}
	if sum := sha256.Sum256(payload); !bytes.Equal(h[:32], sum[:]) {
		return nil, fmt.Errorf("payload checksum mismatch")
	}
	return payload, nil
}

// removeIfSame removes path if it is still the file f opened: a writer may have renamed a fresh
// entry over it meanwhile.
func (c *compileCache) removeIfSame(path string, f *os.File) {
	opened, err1 := f.Stat()
	current, err2 := os.Stat(path)
	if err1 == nil && err2 == nil && os.SameFile(opened, current) {
		_ = os.Remove(path)
	}
}

// remove drops key's entry (PJRT refused it).
func (c *compileCache) remove(key [32]byte) {
	_ = os.Remove(c.path(key))
}

// put writes key's entry: a temporary file in the cache's directory renamed over the entry, so a
// reader sees a whole entry or none, and concurrent writers of one key leave one whole entry. It
// then evicts down to the cap. A payload larger than the cap is not written.
func (c *compileCache) put(key [32]byte, payload []byte) error {
	if int64(len(payload))+compileCacheHeaderSize > c.maxBytes {
		return fmt.Errorf("entry of %d bytes exceeds the cache's cap of %d", len(payload), c.maxBytes)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.dir, compileCacheTmpPrefix+hex.EncodeToString(key[:8])+"-*")
	if err != nil {
		return err
	}
	header := make([]byte, 0, compileCacheHeaderSize)
	header = append(header, compileCacheMagic[:]...)
	header = binary.LittleEndian.AppendUint32(header, compileCacheVersion)
	header = append(header, key[:]...)
	header = binary.LittleEndian.AppendUint64(header, uint64(len(payload)))
	sum := sha256.Sum256(payload)
	header = append(header, sum[:]...)
	_, err = tmp.Write(header)
	if err == nil {
		_, err = tmp.Write(payload)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path(key))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	c.evict()
	return nil
}

// evict removes the least recently used entries (oldest modification time first) until the rest
// fit the cap, and temporary files older than compileCacheStaleTmp.
func (c *compileCache) evict() {
	dirEntries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type entry struct {
		name    string
		size    int64
		modTime time.Time
	}
	var entries []entry
	var total int64
	for _, de := range dirEntries {
		name := de.Name()
		info, err := de.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if strings.HasPrefix(name, compileCacheTmpPrefix) {
			if time.Since(info.ModTime()) > compileCacheStaleTmp {
				_ = os.Remove(filepath.Join(c.dir, name))
			}
			continue
		}
		if !strings.HasSuffix(name, compileCacheSuffix) {
			continue
		}
		entries = append(entries, entry{name, info.Size(), info.ModTime()})
		total += info.Size()
	}
	if total <= c.maxBytes {
		return
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := a.modTime.Compare(b.modTime); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for _, e := range entries {
		if total <= c.maxBytes {
			break
		}
		if err := os.Remove(filepath.Join(c.dir, e.name)); err == nil || os.IsNotExist(err) {
			total -= e.size
		}
	}
}
