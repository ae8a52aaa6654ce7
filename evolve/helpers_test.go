package evolve

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/tokenizer"
)

const tinyModel = "../testdata/models/tiny-llama"

var (
	tinyOnce sync.Once
	tinyEv   *Evaluator
	tinyErr  error
)

// tinyEvaluator loads the 2-layer random-weight fixture once per test binary.
func tinyEvaluator(t testing.TB) *Evaluator {
	t.Helper()
	tinyOnce.Do(func() {
		tok, err := tokenizer.LoadDir(tinyModel)
		if err != nil {
			tinyErr = err
			return
		}
		e, err := engine.Load(tinyModel, engine.Options{})
		if err != nil {
			tinyErr = err
			return
		}
		fp, err := ModelFingerprint(tinyModel)
		if err != nil {
			tinyErr = err
			return
		}
		tinyEv = NewEvaluator(e, tok, fp)
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyEv
}

// fakePool scores jobs with a cheap deterministic function of the candidate
// and the sample, so that fitness varies between members and the optimiser
// really moves, at no model cost. Full-cache references are 0, 0.5 or 1
// depending on the sample (so the all-zero guard is exercised too).
type fakePool struct {
	mu   sync.Mutex
	jobs int
}

func fakeResult(j Job) Result {
	h := fnv.New64a()
	h.Write([]byte(j.Spec))
	h.Write([]byte{byte(j.Sample), byte(j.Sample >> 8)})
	hv := h.Sum64()
	r := Result{Batch: j.Batch, Index: j.Index}
	if j.Params == nil {
		r.Score = float64(hv%3) / 2
		r.KVMean = 600
		return r
	}
	var s, c float64
	for k := 0; k < 16; k++ {
		w := float64(int((hv>>(k*4))&15) - 7)
		s += w * float64(j.Params[k])
		c += float64(j.Params[16+k])
	}
	r.Score = 1 / (1 + math.Exp(-4*s))
	r.KVMean = 300 + 100*math.Tanh(c)
	return r
}

func (p *fakePool) Run(ctx context.Context, jobs []Job, onResult func(Result)) ([]Result, error) {
	c, err := newCollector(jobs, onResult)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		c.add(fakeResult(j))
	}
	p.mu.Lock()
	p.jobs += len(jobs)
	p.mu.Unlock()
	return c.wait(ctx)
}

func (p *fakePool) Close() error { return nil }

// smallConfig is a two-stage run on short prompts (the first task longer
// than 512 tokens, so NAMM steps run in the normalisation).
func smallConfig(t testing.TB, out string) Config {
	t.Helper()
	ev := tinyEvaluator(t)
	s1, err := ParseStage("niah_single:len=600:n=5", 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ParseStage("niah_single:len=600:n=5,vartrack:len=650:n=4", 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	return Config{Model: ev.Fingerprint, BaseModel: "tiny-llama", Stages: []Stage{s1, s2}, Generations: 4,
		Population: 4, Samples: 2, ValSamples: 2, Seed: 7, CMA: cmaes.ModeSep, EvalEvery: 2, MaxNew: 4,
		NormSamples: 1, Out: out}
}

// logWithoutTimes returns the log's lines with the seconds field removed.
func logWithoutTimes(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		// seconds is the last field; everything before it must match bit for bit.
		i := bytes.LastIndex(line, []byte(`,"seconds":`))
		if i < 0 || !json.Valid(line) {
			t.Fatalf("log line without seconds or not JSON: %s", line)
		}
		out = append(out, string(line[:i]))
	}
	return out
}

// jsonLine decodes a log line cut by logWithoutTimes.
func jsonLine(line string, v any) error { return json.Unmarshal([]byte(line+"}"), v) }

// tlog writes Trainer messages to the test log with a timestamp.
type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Logf("%s %s", time.Now().Format("15:04:05.000"), bytes.TrimSpace(p))
	return len(p), nil
}
