package train

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/safetensors"
)

// trainedDirs are the trained base models checked against transformers: NAMM_TRAINED_DIRS
// (comma-separated) or models/model-a and models/model-b.
func trainedDirs() []string {
	if s := os.Getenv("NAMM_TRAINED_DIRS"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{filepath.Join("..", "defaultmodel", "model-a"), filepath.Join("..", "models", "model-b")}
}

// goldenFile is what scripts/gpu/check_trained.py writes (make_fixtures.py's format).
type goldenFile struct {
	Transformers string `json:"transformers"`
	Prompts      []struct {
		Text   string `json:"text"`
		IDs    []int  `json:"ids"`
		Greedy []int  `json:"greedy"`
	} `json:"prompts"`
}

// maxRelErr is max|a-b| / max|b|.
func maxRelErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		num = math.Max(num, math.Abs(float64(a[i])-float64(b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	return num / den
}

func argmaxOf(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// TestTrainedModelsMatchTransformers loads each trained model directory in the engine (f32,
// pure Go) and compares every position's logits, argmaxes and greedy continuations with
// transformers' (f32, eager). Skipped for directories without golden.json.
func TestTrainedModelsMatchTransformers(t *testing.T) {
	for _, dir := range trainedDirs() {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "golden.json"))
			if os.IsNotExist(err) {
				t.Skipf("%s: no golden.json (train the model and run scripts/gpu/check_trained.py)", dir)
			}
			if err != nil {
				t.Fatal(err)
			}
			var g goldenFile
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			gl, err := safetensors.Open(filepath.Join(dir, "golden_logits.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer gl.Close()
			e, err := engine.Load(dir, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range g.Prompts {
				logits, err := e.AllLogits(p.IDs)
				if err != nil {
					t.Fatal(err)
				}
				last, _, err := gl.Float32(fmt.Sprintf("last_%d", i))
				if err != nil {
					t.Fatal(err)
				}
				if r := maxRelErr(logits[len(logits)-1], last); r > 1e-4 {
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
				worst := 0.0
				for pos := range shape[0] {
					want := cols[pos*shape[1] : (pos+1)*shape[1]]
					worst = math.Max(worst, maxRelErr(logits[pos][:shape[1]], want))
					ref := int(int64(binary.LittleEndian.Uint64(raw[8*pos:])))
					if got := argmaxOf(logits[pos]); got != ref {
						// Tolerate only a near-tie between the two candidates.
						gap := math.Abs(float64(logits[pos][got] - logits[pos][ref]))
						if gap > 1e-4*math.Abs(float64(logits[pos][ref])) {
							t.Errorf("prompt %d position %d: argmax %d, transformers %d (gap %.3g)", i, pos, got, ref, gap)
						}
					}
				}
				if worst > 1e-4 {
					t.Errorf("prompt %d: logits relative error %.3g > 1e-4 (over %d positions)", i, worst, shape[0])
				}
				got, err := e.Greedy(p.IDs, len(p.Greedy), nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !equalInts(got, p.Greedy) {
					t.Errorf("prompt %d: greedy %v, transformers %v", i, got, p.Greedy)
				}
				t.Logf("prompt %d (%d tokens): max relative logit error %.2g", i, len(p.IDs), worst)
			}
		})
	}
}
