package torchzip

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// pickleWriter emits protocol-2 opcodes the way CPython's pickler (and so torch.save) does.
type pickleWriter struct {
	bytes.Buffer
	memo int
}

func (p *pickleWriter) op(b ...byte) { p.Write(b) }

func (p *pickleWriter) put() {
	p.op('q', byte(p.memo))
	p.memo++
}

func (p *pickleWriter) str(s string) {
	p.op('X')
	binary.Write(p, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	p.put()
}

func (p *pickleWriter) global(module, name string) {
	p.op('c')
	p.WriteString(module + "\n" + name + "\n")
	p.put()
}

func (p *pickleWriter) int(v int) {
	switch {
	case v >= 0 && v < 256:
		p.op('K', byte(v))
	case v >= 0 && v < 65536:
		p.op('M', byte(v), byte(v>>8))
	default:
		p.op('J')
		binary.Write(p, binary.LittleEndian, int32(v))
	}
}

func (p *pickleWriter) float(v float64) {
	p.op('G')
	binary.Write(p, binary.BigEndian, v)
}

func (p *pickleWriter) intTuple(vs []int) {
	switch len(vs) {
	case 0:
		p.op(')')
		return
	case 1, 2, 3:
		for _, v := range vs {
			p.int(v)
		}
		p.op(0x84 + byte(len(vs)))
	default:
		p.op('(')
		for _, v := range vs {
			p.int(v)
		}
		p.op('t')
	}
	p.put()
}

// tensor emits _rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict()).
func (p *pickleWriter) tensor(storageType, key string, numel, offset int, size, stride []int) {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(')
	p.op('(')
	p.str("storage")
	p.global("torch", storageType)
	p.str(key)
	p.str("cpu")
	p.int(numel)
	p.op('t')
	p.put()
	p.op('Q')
	p.int(offset)
	p.intTuple(size)
	p.intTuple(stride)
	p.op(0x89) // NEWFALSE
	p.global("collections", "OrderedDict")
	p.op(')', 'R')
	p.put()
	p.op('t')
	p.put()
	p.op('R')
	p.put()
}

// writeZip stores entries uncompressed under prefix/, as torch.save does.
func writeZip(t testing.TB, entries map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeysBytes(entries) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(entries[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedKeysBytes(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

func f32Bytes(order binary.ByteOrder, vs []float32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		order.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// handmadePickle is {"evolution_state": {"mean": tensor(4), "view": strided 3-d view,
// "bf": bf16 tensor}, "x": [1, 2.5, "s"]}, opcode for opcode as torch emits it.
func handmadePickle() []byte {
	p := &pickleWriter{}
	p.op(0x80, 2, '}')
	p.put()
	p.op('(')
	p.str("evolution_state")
	p.op('}')
	p.put()
	p.op('(')
	p.str("mean")
	p.tensor("FloatStorage", "0", 4, 0, []int{4}, []int{1})
	p.str("view")
	p.tensor("FloatStorage", "1", 30, 3, []int{2, 3, 2}, []int{1, 8, 3})
	p.str("bf")
	p.tensor("BFloat16Storage", "2", 3, 1, []int{2}, []int{1})
	p.op('u') // SETITEMS
	p.str("x")
	p.op(']')
	p.put()
	p.op('(')
	p.int(1)
	p.float(2.5)
	p.str("s")
	p.op('e') // APPENDS
	p.op('u')
	p.op('.')
	return p.Bytes()
}

func handmadeEntries(order binary.ByteOrder, orderName string) map[string][]byte {
	view := make([]float32, 30)
	for i := range view {
		view[i] = float32(i) + 0.5
	}
	bf := make([]byte, 6)
	for i, h := range []uint16{0x3F80, 0xC020, 0x4049} { // 1, -2.5, 3.140625
		order.PutUint16(bf[2*i:], h)
	}
	return map[string][]byte{
		"ckpt/data.pkl":   handmadePickle(),
		"ckpt/byteorder":  []byte(orderName),
		"ckpt/version":    []byte("3\n"),
		"ckpt/data/0":     f32Bytes(order, []float32{1, -2, 0.25, 1e30}),
		"ckpt/data/1":     f32Bytes(order, view),
		"ckpt/data/2":     bf,
		"ckpt/.data/junk": []byte("x"),
	}
}

func TestLoadHandmadeCheckpoint(t *testing.T) {
	for _, c := range []struct {
		order binary.ByteOrder
		name  string
	}{{binary.LittleEndian, "little"}, {binary.BigEndian, "big"}} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ckpt.pt")
			if err := os.WriteFile(path, writeZip(t, handmadeEntries(c.order, c.name)), 0o644); err != nil {
				t.Fatal(err)
			}
			obj, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			checkTensor(t, "mean", mustTensor(t, obj, "evolution_state", "mean"), "float32", []int{4}, []int{1}, []float32{1, -2, 0.25, 1e30})
			// Reference for the strided view: element (i,j,k) = storage[3 + i*1 + j*8 + k*3].
			var want []float32
			for i := 0; i < 2; i++ {
				for j := 0; j < 3; j++ {
					for k := 0; k < 2; k++ {
						want = append(want, float32(3+i+8*j+3*k)+0.5)
					}
				}
			}
			view := mustTensor(t, obj, "evolution_state", "view")
			checkTensor(t, "view", view, "float32", []int{2, 3, 2}, []int{1, 8, 3}, want)
			if view.StorageOffset != 3 {
				t.Errorf("view offset = %d", view.StorageOffset)
			}
			checkTensor(t, "bf", mustTensor(t, obj, "evolution_state", "bf"), "bfloat16", []int{2}, []int{1}, []float32{-2.5, 3.140625})
			if x := mustLookup(t, obj, "x"); !reflect.DeepEqual(x, []any{int64(1), 2.5, "s"}) {
				t.Errorf("x = %#v", x)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	good := handmadeEntries(binary.LittleEndian, "little")
	with := func(name string, data []byte) map[string][]byte {
		m := map[string][]byte{}
		for k, v := range good {
			m[k] = v
		}
		if data == nil {
			delete(m, name)
		} else {
			m[name] = data
		}
		return m
	}
	badPickle := func(from, to string) []byte {
		return bytes.Replace(handmadePickle(), []byte(from), []byte(to), 1)
	}
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"not a zip", []byte("hello world"), "not a torch zip checkpoint"},
		{"legacy", []byte{0x80, 0x02, 0x8a, 0x0a}, "legacy torch.save format"},
		{"no data.pkl", writeZip(t, with("ckpt/data.pkl", nil)), "no <prefix>/data.pkl"},
		{"missing storage", writeZip(t, with("ckpt/data/1", nil)), `storage "1": no entry ckpt/data/1`},
		{"short storage", writeZip(t, with("ckpt/data/1", make([]byte, 40))), `storage "1": entry ckpt/data/1 has 40 bytes, want 120`},
		{"bad byteorder", writeZip(t, with("ckpt/byteorder", []byte("middle"))), "unknown byte order"},
		{"truncated pickle", writeZip(t, with("ckpt/data.pkl", handmadePickle()[:100])), "ckpt/data.pkl"},
		{"unknown storage", writeZip(t, with("ckpt/data.pkl", badPickle("FloatStorage", "FloatStorag2"))), "unsupported storage type torch.FloatStorag2"},
		{"view out of range", writeZip(t, with("ckpt/data.pkl", badPickle("\x4b\x1e", "\x4b\x10"))), `reaches element 23 of storage "1" with 16 elements`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.pt")
			os.WriteFile(path, c.file, 0o644)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file and contain %q", err, c.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.pt")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
