package engine

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/safetensors"
)

// golden is what scripts/gpu/make_fixtures.py (random fixtures) and
// scripts/gpu/check_trained.py (our trained models) wrote from transformers.
type golden struct {
	Transformers string `json:"transformers"`
	Prompts      []struct {
		Text   string `json:"text"`
		IDs    []int  `json:"ids"`
		Greedy []int  `json:"greedy"`
	} `json:"prompts"`
}

var fixtureModels = []string{"tiny-llama", "tiny-mistral", "tiny-qwen2"}

func fixtureDir(name string) string { return filepath.Join("..", "testdata", "models", name) }

// goldenDirs are every model directory with transformers' golden outputs:
// the random fixtures, the trained models A (embedded), B and C, then those
// NAMM_GOLDEN_DIRS lists (a path list: a model trained on a GPU, checked by
// scripts/gpu/check_trained.py there, is checked here before it is committed).
func goldenDirs() []string {
	var dirs []string
	for _, m := range fixtureModels {
		dirs = append(dirs, fixtureDir(m))
	}
	dirs = append(dirs, filepath.Join("..", "defaultmodel", "model-a"), filepath.Join("..", "models", "model-b"),
		filepath.Join("..", "models", "model-c"))
	return append(dirs, filepath.SplitList(os.Getenv("NAMM_GOLDEN_DIRS"))...)
}

func loadGolden(t *testing.T, dir string) (golden, *safetensors.File) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "golden_logits.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return g, f
}

// relErr is max|a-b| / max|b|.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		num = math.Max(num, math.Abs(float64(a[i])-float64(b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	return num / den
}

// TestLogitsMatchTransformers compares every position's logits with
// transformers' (f32, eager attention) on the fixtures and trained models.
func TestLogitsMatchTransformers(t *testing.T) {
	for _, dir := range goldenDirs() {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			g, gl := loadGolden(t, dir)
			e, err := Load(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range g.Prompts {
				logits, err := allLogits(e, p.IDs)
				if err != nil {
					t.Fatal(err)
				}
				last, _, err := gl.Float32(fmt.Sprintf("last_%d", i))
				if err != nil {
					t.Fatal(err)
				}
				if r := relErr(logits[len(logits)-1], last); r > 1e-4 {
					t.Errorf("prompt %d: last-position logits relative error %.3g > 1e-4", i, r)
				}
				cols, shape, err := gl.Float32(fmt.Sprintf("cols_%d", i))
				if err != nil {
					t.Fatal(err)
				}
				raw, err := gl.Raw(fmt.Sprintf("argmax_%d", i))
				if err != nil {
					t.Fatal(err)
				}
				am := make([]int64, len(raw)/8)
				for j := range am {
					am[j] = int64(binary.LittleEndian.Uint64(raw[8*j:]))
				}
				worst := 0.0
				for pos := range shape[0] {
					want := cols[pos*shape[1] : (pos+1)*shape[1]]
					worst = math.Max(worst, relErr(logits[pos][:shape[1]], want))
					if got := Argmax(logits[pos]); got != int(am[pos]) {
						t.Errorf("prompt %d position %d: argmax %d, transformers %d", i, pos, got, int(am[pos]))
					}
				}
				if worst > 1e-4 {
					t.Errorf("prompt %d: logits relative error %.3g > 1e-4 (over %d positions)", i, worst, shape[0])
				}
				t.Logf("prompt %d (%d tokens): max relative logit error %.2g", i, len(p.IDs), worst)
			}
		})
	}
}

// TestGreedyMatchesTransformers checks greedy continuations token for token,
// through chunked prefill and the decode path; the small fixtures also with
// 16-token chunks (many chunk boundaries, many cache growths).
func TestGreedyMatchesTransformers(t *testing.T) {
	for _, dir := range goldenDirs() {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			g, _ := loadGolden(t, dir)
			chunks := []int{128}
			if strings.Contains(dir, "testdata") {
				chunks = append(chunks, 16)
			}
			for _, chunk := range chunks {
				e, err := Load(dir, Options{ChunkSize: chunk})
				if err != nil {
					t.Fatal(err)
				}
				for i, p := range g.Prompts {
					got, err := e.Greedy(p.IDs, len(p.Greedy), nil, nil)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got, p.Greedy) {
						t.Errorf("chunk %d prompt %d: greedy %v, transformers %v", chunk, i, got, p.Greedy)
					}
				}
			}
		})
	}
}

// allLogits runs a prompt through the full model without a cache policy and
// returns the logits of every position [T][V].
func allLogits(e *Engine, ids []int) ([][]float32, error) {
	s, err := e.NewSession(nil)
	if err != nil {
		return nil, err
	}
	var out [][]float32
	cs := e.opts.ChunkSize
	for i := 0; i < len(ids); {
		n := min(cs-i%cs, len(ids)-i)
		pass := policy.Pass{Phase: policy.Prefill, Start: i, NewTokens: n, LastPrefill: i+n == len(ids), PromptLen: len(ids)}
		if _, err := s.forward(ids[i:i+n], pass, cs, false); err != nil {
			return nil, err
		}
		lex, err := e.logitsExec(true)
		if err != nil {
			return nil, err
		}
		res, err := e.timed(fmt.Sprintf("logits-all/t%d", cs), lex, s.hidden, e.Weights.Norm, e.Weights.Head)
		if err != nil {
			return nil, err
		}
		flat := tensors.MustCopyFlatData[float32](res[0])
		v := e.Config.VocabSize
		for t := range n {
			out = append(out, flat[t*v:(t+1)*v])
		}
		i += n
	}
	return out, nil
}
