package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// longText is about 32k tokens of mixed text built from texts.json.
func longText(b *testing.B) string {
	data, err := os.ReadFile(filepath.Join(fixtureDir, "texts.json"))
	if err != nil {
		b.Fatal(err)
	}
	var texts []string
	if err := json.Unmarshal(data, &texts); err != nil {
		b.Fatal(err)
	}
	joined := strings.Join(texts, "\n")
	var sb strings.Builder
	for sb.Len() < 100_000 {
		sb.WriteString(joined)
	}
	return sb.String()
}

func benchmarkEncode(b *testing.B, name string) {
	tk := fixture(b, name)
	text := longText(b)
	b.SetBytes(int64(len(text)))
	n := 0
	for b.Loop() {
		tk.model.mu.Lock()
		tk.model.cache = map[string][]int{} // measure cold words too
		tk.model.mu.Unlock()
		n = len(tk.Encode(text, true))
	}
	b.ReportMetric(float64(n), "tokens")
}

func BenchmarkEncodeMistral(b *testing.B) { benchmarkEncode(b, "mistral-7b") }
func BenchmarkEncodeGPT2(b *testing.B)    { benchmarkEncode(b, "gpt2") }
func BenchmarkEncodeLlama3(b *testing.B)  { benchmarkEncode(b, "llama3-tiny") }

func BenchmarkDecodeGPT2(b *testing.B) {
	tk := fixture(b, "gpt2")
	ids := tk.Encode(longText(b), false)
	for b.Loop() {
		_ = tk.Decode(ids, true)
	}
}
