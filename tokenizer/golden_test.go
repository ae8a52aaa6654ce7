package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

const fixtureDir = "../testdata/tokenizers"

var fixtureNames = []string{"mistral-7b", "gpt2", "llama3-tiny", "qwen2-tiny"}

var (
	fixtureMu    sync.Mutex
	fixtureCache = map[string]*Tokenizer{}
)

// fixture loads testdata/tokenizers/<name>/tokenizer.json once per test run.
func fixture(t testing.TB, name string) *Tokenizer {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if tk, ok := fixtureCache[name]; ok {
		return tk
	}
	tk, err := Load(filepath.Join(fixtureDir, name, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	fixtureCache[name] = tk
	return tk
}

// goldenCase is one entry of golden_js.json (JS port) or golden.json (Rust
// tokenizers via scripts/gpu/tokenizer_golden.py).
type goldenCase struct {
	Text               string `json:"text"`
	IDs                []int  `json:"ids"`
	IDsSpecial         []int  `json:"ids_special"`
	Decoded            string `json:"decoded"`
	DecodedSkipSpecial string `json:"decoded_skip_special"`
}

func readGolden(t *testing.T, path string) ([]goldenCase, bool) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(g.Cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return g.Cases, true
}

func checkGolden(t *testing.T, tk *Tokenizer, cases []goldenCase) {
	for _, c := range cases {
		if got := tk.Encode(c.Text, false); !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q, false)\n got %v\nwant %v", c.Text, got, c.IDs)
			continue
		}
		if got := tk.Encode(c.Text, true); !slices.Equal(got, c.IDsSpecial) {
			t.Errorf("Encode(%q, true)\n got %v\nwant %v", c.Text, got, c.IDsSpecial)
		}
		if got := tk.Decode(c.IDs, false); got != c.Decoded {
			t.Errorf("Decode(ids of %q, false) = %q, want %q", c.Text, got, c.Decoded)
		}
		if got := tk.Decode(c.IDsSpecial, true); got != c.DecodedSkipSpecial {
			t.Errorf("Decode(ids of %q, true) = %q, want %q", c.Text, got, c.DecodedSkipSpecial)
		}
	}
}

// TestGoldenJS compares with the independent JS port (@huggingface/tokenizers).
func TestGoldenJS(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			cases, ok := readGolden(t, filepath.Join(fixtureDir, name, "golden_js.json"))
			if !ok {
				t.Fatalf("golden_js.json missing: run scripts/tokenizer_golden_js.mjs")
			}
			checkGolden(t, fixture(t, name), cases)
		})
	}
}

// TestGoldenRust compares with the Rust tokenizers library; golden.json is
// made on the GPU machine by scripts/gpu/tokenizer_golden.py.
func TestGoldenRust(t *testing.T) {
	for _, name := range fixtureNames {
		t.Run(name, func(t *testing.T) {
			cases, ok := readGolden(t, filepath.Join(fixtureDir, name, "golden.json"))
			if !ok {
				t.Skipf("%s/%s/golden.json not present: run scripts/gpu/tokenizer_golden.py where Python tokenizers is installed", fixtureDir, name)
			}
			checkGolden(t, fixture(t, name), cases)
		})
	}
}
