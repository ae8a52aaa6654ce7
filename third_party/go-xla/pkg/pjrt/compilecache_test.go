package pjrt

// Tests of the compile cache's file layer (compilecache.go): no plugin needed.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testCache(t *testing.T, maxBytes int64) *compileCache {
	t.Helper()
	return &compileCache{dir: filepath.Join(t.TempDir(), "cache"), maxBytes: maxBytes}
}

func testKey(i int) [32]byte {
	k := compileCacheKey{ProgramFormat: "mlir", Program: []byte(fmt.Sprintf("module @m { %d }", i))}
	return k.Sum()
}

// cacheFiles lists the names in the cache's directory.
func cacheFiles(t *testing.T, c *compileCache) []string {
	t.Helper()
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCompileCacheRoundTrip: what put writes, get returns; an absent key is a miss.
func TestCompileCacheRoundTrip(t *testing.T) {
	c := testCache(t, 1<<20)
	key := testKey(1)
	if _, ok := c.get(key); ok {
		t.Fatal("hit in an empty cache")
	}
	payload := bytes.Repeat([]byte("executable"), 1000)
	if err := c.put(key, payload); err != nil {
		t.Fatal(err)
	}
	got, ok := c.get(key)
	if !ok || !bytes.Equal(got, payload) {
		t.Fatalf("get after put: ok=%v, %d bytes, want %d", ok, len(got), len(payload))
	}
	if _, ok := c.get(testKey(2)); ok {
		t.Error("hit for a key never written")
	}
	if names := cacheFiles(t, c); len(names) != 1 || !strings.HasSuffix(names[0], compileCacheSuffix) {
		t.Errorf("files after one put: %v, want one %s entry", names, compileCacheSuffix)
	}
}

// TestCompileCacheDamagedEntries: an entry that fails any check of its header or checksum reads
// as a miss and is removed.
func TestCompileCacheDamagedEntries(t *testing.T) {
	payload := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 200)
	cases := []struct {
		name   string
		damage func(entry []byte) []byte
	}{
		{"corrupted payload", func(b []byte) []byte { b[len(b)-7] ^= 0xff; return b }},
		{"corrupted checksum", func(b []byte) []byte { b[compileCacheHeaderSize-1] ^= 1; return b }},
		{"truncated payload", func(b []byte) []byte { return b[:len(b)-1] }},
		{"truncated header", func(b []byte) []byte { return b[:compileCacheHeaderSize-10] }},
		{"empty file", func(b []byte) []byte { return nil }},
		{"extra bytes", func(b []byte) []byte { return append(b, 0) }},
		{"wrong magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"wrong version", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[8:], compileCacheVersion+1)
			return b
		}},
		{"another key", func(b []byte) []byte { b[12] ^= 1; return b }},
		{"length too large", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[44:], 1<<62)
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testCache(t, 1<<20)
			key := testKey(7)
			if err := c.put(key, payload); err != nil {
				t.Fatal(err)
			}
			path := c.path(key)
			entry, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(entry), 0o644); err != nil {
				t.Fatal(err)
			}
			if got, ok := c.get(key); ok {
				t.Fatalf("damaged entry read as a hit (%d bytes)", len(got))
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("damaged entry not removed: stat says %v", err)
			}
		})
	}
}

// TestCompileCacheKeyInputs: changing any one input changes the key; a textual StableHLO
// program's module name does not.
func TestCompileCacheKeyInputs(t *testing.T) {
	base := func() compileCacheKey {
		return compileCacheKey{
			PluginName:       "cuda",
			PluginPath:       "/usr/lib/xla_cuda_plugin.so",
			PluginFile:       "1000 bytes, modified 2026-01-01T00:00:00Z",
			PluginAPIVersion: "0.83",
			PluginAttributes: map[string]any{"xla_version": int64(2), "stablehlo_current_version": []int64{1, 9, 5}},
			Platform:         "cuda",
			PlatformVersion:  "cuda 13000",
			DeviceKinds:      []string{"NVIDIA H100 80GB HBM3"},
			XLAFlags:         "--xla_gpu_autotune_level=4",
			ProgramFormat:    "mlir",
			Program:          []byte("module @graph_3 {\n  func.func @main() {}\n}\n"),
			CompileOptions:   []byte{0x08, 0x01},
		}
	}
	ref := base()
	refSum := ref.Sum()
	if again := base(); again.Sum() != refSum {
		t.Fatal("the same inputs gave two keys")
	}

	changes := map[string]func(k *compileCacheKey){
		"plugin name":        func(k *compileCacheKey) { k.PluginName = "gpu" },
		"plugin path":        func(k *compileCacheKey) { k.PluginPath = "/opt/xla_cuda_plugin.so" },
		"plugin file":        func(k *compileCacheKey) { k.PluginFile = "1001 bytes, modified 2026-01-01T00:00:00Z" },
		"plugin API version": func(k *compileCacheKey) { k.PluginAPIVersion = "0.84" },
		"attribute value":    func(k *compileCacheKey) { k.PluginAttributes["xla_version"] = int64(3) },
		"attribute type":     func(k *compileCacheKey) { k.PluginAttributes["xla_version"] = "2" },
		"attribute list":     func(k *compileCacheKey) { k.PluginAttributes["stablehlo_current_version"] = []int64{1, 9, 6} },
		"attribute added":    func(k *compileCacheKey) { k.PluginAttributes["extra"] = true },
		"attribute removed":  func(k *compileCacheKey) { delete(k.PluginAttributes, "xla_version") },
		"platform":           func(k *compileCacheKey) { k.Platform = "rocm" },
		"platform version":   func(k *compileCacheKey) { k.PlatformVersion = "cuda 13010" },
		"device kind":        func(k *compileCacheKey) { k.DeviceKinds = []string{"NVIDIA H200"} },
		"device count":       func(k *compileCacheKey) { k.DeviceKinds = append(k.DeviceKinds, k.DeviceKinds[0]) },
		"XLA flags":          func(k *compileCacheKey) { k.XLAFlags = "" },
		"program format":     func(k *compileCacheKey) { k.ProgramFormat = "hlo" },
		"program body":       func(k *compileCacheKey) { k.Program = []byte("module @graph_3 {\n  func.func @main2() {}\n}\n") },
		"compile options":    func(k *compileCacheKey) { k.CompileOptions = []byte{0x08, 0x02} },
		"no compile options": func(k *compileCacheKey) { k.CompileOptions = nil },
		"fields shift bytes": func(k *compileCacheKey) { k.Platform, k.PlatformVersion = "cudac", "uda 13000" },
		"name outside header": func(k *compileCacheKey) {
			k.Program = []byte("// module @x\nmodule @graph_3 {\n  func.func @main() {}\n}\n")
		},
	}
	seen := map[[32]byte]string{refSum: "reference"}
	for name, change := range changes {
		k := base()
		change(&k)
		sum := k.Sum()
		if other, dup := seen[sum]; dup {
			t.Errorf("%s: same key as %s", name, other)
		}
		seen[sum] = name
	}

	renamed := base()
	renamed.Program = []byte("module @Exec_engine_fusedExec_func1_7 {\n  func.func @main() {}\n}\n")
	if renamed.Sum() != refSum {
		t.Error("a textual StableHLO program's module name changed the key")
	}
	hlo, hloRenamed := base(), base()
	hlo.ProgramFormat, hloRenamed.ProgramFormat = "hlo", "hlo"
	hloRenamed.Program = renamed.Program
	if hlo.Sum() == hloRenamed.Sum() {
		t.Error("an HLO program's bytes are not all in the key")
	}
}

// TestCompileCacheConcurrentWriters: writers of one key at the same time leave one whole entry,
// which reads back as one of the payloads written, and no temporary files.
func TestCompileCacheConcurrentWriters(t *testing.T) {
	c := testCache(t, 64<<20)
	key := testKey(3)
	const writers = 8
	payloads := make([][]byte, writers)
	for i := range payloads {
		payloads[i] = bytes.Repeat([]byte{byte(i + 1)}, 256<<10)
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.put(key, payloads[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if names := cacheFiles(t, c); len(names) != 1 || names[0] != filepath.Base(c.path(key)) {
		t.Fatalf("files after concurrent writes: %v, want only %s", names, filepath.Base(c.path(key)))
	}
	got, ok := c.get(key)
	if !ok {
		t.Fatal("no valid entry after concurrent writes")
	}
	found := false
	for _, p := range payloads {
		found = found || bytes.Equal(got, p)
	}
	if !found {
		t.Error("the entry holds none of the payloads written")
	}
}

// TestCompileCacheEviction: past the cap, the least recently used entries go first (modification
// time, which a hit refreshes) until the rest fit; stale temporary files go too.
func TestCompileCacheEviction(t *testing.T) {
	const size = 1000
	entrySize := int64(size + compileCacheHeaderSize)
	c := testCache(t, 3*entrySize)
	payload := bytes.Repeat([]byte{9}, size)
	start := time.Now().Add(-time.Hour)
	for i := range 3 {
		if err := c.put(testKey(i), payload); err != nil {
			t.Fatal(err)
		}
		at := start.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(c.path(testKey(i)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	stale := filepath.Join(c.dir, compileCacheTmpPrefix+"left-by-a-crash")
	if err := os.WriteFile(stale, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * compileCacheStaleTmp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	// Entry 0 is the oldest written, but a hit makes it the most recently used.
	if _, ok := c.get(testKey(0)); !ok {
		t.Fatal("entry 0 missing before eviction")
	}
	if err := c.put(testKey(3), payload); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true, true} {
		if _, err := os.Stat(c.path(testKey(i))); (err == nil) != want {
			t.Errorf("entry %d: present=%v, want %v", i, err == nil, want)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file not removed: %v", err)
	}

	// Two more entries push out the two least recently used: 2, then 0 (given times, as file
	// times may be coarser than the gap between the hit and the last write).
	for i, minutes := range map[int]int{0: 10, 3: 11} {
		at := start.Add(time.Duration(minutes) * time.Minute)
		if err := os.Chtimes(c.path(testKey(i)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	for i := 4; i < 6; i++ {
		if err := c.put(testKey(i), payload); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []bool{false, false, false, true, true, true} {
		if _, err := os.Stat(c.path(testKey(i))); (err == nil) != want {
			t.Errorf("after two more: entry %d: present=%v, want %v", i, err == nil, want)
		}
	}

	if err := c.put(testKey(9), bytes.Repeat([]byte{1}, int(3*entrySize))); err == nil {
		t.Error("an entry larger than the cap was written")
	}
}

// TestCompileCacheFromEnv: the cache is off without NAMM_XLA_CACHE_DIR; NAMM_XLA_CACHE_MAX_MB sets
// the cap, and a value that is not a positive number leaves the default.
func TestCompileCacheFromEnv(t *testing.T) {
	t.Setenv(EnvCompileCacheDir, "")
	if c := compileCacheFromEnv(); c != nil {
		t.Fatalf("cache on without $%s: %+v", EnvCompileCacheDir, c)
	}
	t.Setenv(EnvCompileCacheDir, "/tmp/x")
	for value, want := range map[string]int64{
		"":     defaultCompileCacheMaxMB << 20,
		"16":   16 << 20,
		"0":    defaultCompileCacheMaxMB << 20,
		"-3":   defaultCompileCacheMaxMB << 20,
		"lots": defaultCompileCacheMaxMB << 20,
	} {
		t.Setenv(EnvCompileCacheMaxMB, value)
		c := compileCacheFromEnv()
		if c == nil || c.dir != "/tmp/x" || c.maxBytes != want {
			t.Errorf("$%s=%q: %+v, want dir /tmp/x and %d bytes", EnvCompileCacheMaxMB, value, c, want)
		}
	}
}
