package torchzip

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func noStorage(key string, nbytes int64) ([]byte, error) {
	return nil, fmt.Errorf("no storages in this test")
}

// pythonPickles has CPython pickle the same object at every protocol (0-5),
// exercising the text opcodes, MEMOIZE/FRAME/STACK_GLOBAL and friends.
const pythonPickles = `
import collections, pickle, sys
shared = ["shared"]
obj = {
    "ints": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**63 - 1, -2**63, 2**64, -2**100],
    "floats": [0.0, -1.5, 1e300, 2.5e-300],
    "strs": ["", "ascii", "é", "中文", "a\nb\\c'\"", "\u0000"],
    "bytes": b"\x00\x01\xfe\xff",
    "tuple": (1, ("nested", ()), None, True, False),
    "od": collections.OrderedDict([("b", 1), ("a", 2)]),
    "set": {7},
    "keys": {1: "one", 2.5: "two and a half", None: "none", (1, 2): "tuple", -3: "minus three"},
    "shared": [shared, shared],
    "long": list(range(300)),
}
for proto in range(6):
    data = pickle.dumps(obj, protocol=proto)
    sys.stdout.write(data.hex() + "\n")
`

func TestUnpicklePythonProtocols(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not available")
	}
	out, err := exec.Command("python3", "-c", pythonPickles).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 6 {
		t.Fatalf("got %d pickles", len(lines))
	}
	bigInt := func(s string) *big.Int { v, _ := new(big.Int).SetString(s, 10); return v }
	long := make([]any, 300)
	for i := range long {
		long[i] = int64(i)
	}
	shared := []any{"shared"}
	want := map[string]any{
		"ints": []any{int64(0), int64(1), int64(-1), int64(255), int64(256), int64(65535), int64(65536),
			int64(-1 << 31), int64(1<<31 - 1), int64(1<<63 - 1), int64(-1 << 63),
			bigInt("18446744073709551616"), bigInt("-1267650600228229401496703205376")},
		"floats": []any{0.0, -1.5, 1e300, 2.5e-300},
		"strs":   []any{"", "ascii", "é", "中文", "a\nb\\c'\"", "\x00"},
		"bytes":  []byte{0, 1, 0xfe, 0xff},
		"tuple":  []any{int64(1), []any{"nested", []any{}}, nil, true, false},
		"od":     map[string]any{"b": int64(1), "a": int64(2)},
		"set":    []any{int64(7)},
		"keys":   map[string]any{"1": "one", "2.5": "two and a half", "None": "none", "[1 2]": "tuple", "-3": "minus three"},
		"shared": []any{shared, shared},
		"long":   long,
	}
	for proto, h := range lines {
		var data []byte
		fmt.Sscanf(h, "%x", &data)
		got, err := unpickle(data, noStorage, false)
		if err != nil {
			t.Fatalf("protocol %d: %v", proto, err)
		}
		m := got.(map[string]any)
		for k, w := range want {
			if !reflect.DeepEqual(m[k], w) {
				if wb, ok := w.([]any); ok && k == "ints" {
					gb := m[k].([]any)
					for i := range wb {
						if bw, ok := wb[i].(*big.Int); ok {
							if bg, ok := gb[i].(*big.Int); !ok || bg.Cmp(bw) != 0 {
								t.Errorf("protocol %d: ints[%d] = %v, want %v", proto, i, gb[i], bw)
							}
						} else if gb[i] != wb[i] {
							t.Errorf("protocol %d: ints[%d] = %v, want %v", proto, i, gb[i], wb[i])
						}
					}
					continue
				}
				t.Errorf("protocol %d: %s = %#v, want %#v", proto, k, m[k], w)
			}
		}
		// Shared references stay shared.
		sh := m["shared"].([]any)
		if &sh[0].([]any)[0] != &sh[1].([]any)[0] {
			t.Errorf("protocol %d: shared list was copied", proto)
		}
	}
}

func TestUnpickleOddCases(t *testing.T) {
	// A list containing itself: l = []; l.append(l)  (protocol 2).
	cyclic := []byte("\x80\x02]q\x00h\x00a.")
	v, err := unpickle(cyclic, noStorage, false)
	if err != nil {
		t.Fatal(err)
	}
	l := v.([]any)
	if len(l) != 1 || &l[0].([]any)[0] != &l[0] {
		t.Errorf("cyclic list not rebuilt as a cycle: %#v", l)
	}
	// An unknown class becomes an Object recording its name, args and state.
	obj := []byte("\x80\x02cmy.module\nThing\nq\x00K\x01\x85q\x01Rq\x02}q\x03X\x01\x00\x00\x00aK\x02sb.")
	v, err = unpickle(obj, noStorage, false)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*Object)
	if !ok || o.Class != "my.module.Thing" || !reflect.DeepEqual(o.Args, []any{int64(1)}) ||
		!reflect.DeepEqual(o.State, map[string]any{"a": int64(2)}) {
		t.Errorf("object = %#v", v)
	}
	bad := map[string]string{
		"empty":          "",
		"no stop":        "\x80\x02}",
		"underflow":      "\x80\x02s.",
		"bad memo":       "\x80\x02h\x05.",
		"no mark":        "\x80\x02t.",
		"long string":    "\x80\x02X\xff\xff\xff\x7fab.",
		"bad utf8":       "\x80\x02X\x01\x00\x00\x00\xff.",
		"protocol 9":     "\x80\x09N.",
		"unknown opcode": "\x80\x02\xff.",
		"huge long":      "\x80\x02\x8b\xff\xff\xff\x00.",
		"call non-class": "\x80\x02K\x01)R.",
		"setitem list":   "\x80\x02]K\x01K\x02s.",
		"append dict":    "\x80\x02}K\x01a.",
		"mark popped":    "\x80\x02K\x01(0.",
		"persid str":     "\x80\x02X\x01\x00\x00\x00aQ.",
		"storage tuple":  "\x80\x02X\x07\x00\x00\x00storagecmy\nThing\nX\x01\x00\x00\x00aX\x03\x00\x00\x00cpuK\x01(tQ.",
		"tensor no stor": "\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN\x85R.",
	}
	for name, data := range bad {
		if _, err := unpickle([]byte(data), noStorage, false); err == nil {
			t.Errorf("%s: no error", name)
		} else if !errors.Is(err, ErrPickle) && !strings.Contains(err.Error(), "storage") {
			t.Errorf("%s: error %v does not wrap ErrPickle", name, err)
		}
	}
}

// Deep nesting is an error, not a stack overflow.
func TestUnpickleDepthLimit(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("\x80\x02")
	for i := 0; i < maxDepth+10; i++ {
		b.WriteString("]")
	}
	for i := 0; i < maxDepth+9; i++ {
		b.WriteString("a")
	}
	b.WriteString(".")
	if _, err := unpickle(b.Bytes(), noStorage, false); err == nil || !strings.Contains(err.Error(), "nesting") {
		t.Errorf("deep nesting: %v", err)
	}
}
