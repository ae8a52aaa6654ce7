package evolve

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/namm"
)

func noiseTrainer(t *testing.T, cfg Config, pool Pool) *Trainer {
	return &Trainer{Cfg: cfg, Eval: tinyEvaluator(t), Pool: pool}
}

// TestNoiseHandComputed: the fitness of each draw, the mean absolute
// difference within pairs and the standard deviation match a hand
// computation from the pool's scores; the draws are answerable prompts,
// the two draws of a pair are not all the same, the report is noise.json,
// and a second report is identical.
func TestNoiseHandComputed(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	cfg.Draw = DrawAnswerable
	f := &namm.File{Params: make([]float32, namm.NumParams), Path: "x.namm"}
	for k := range f.Params {
		f.Params[k] = 0.1 * float32(k%5-2)
	}
	pool := &recordPool{}
	rep, err := noiseTrainer(t, cfg, pool).Noise(context.Background(), 3, f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stage != 1 || len(rep.Pairs) != 3 || rep.Member != "file x.namm" || rep.Samples != 2 {
		t.Fatalf("report: %+v", rep)
	}
	jobs := pool.drawn[mustRunID(t, cfg)+"-noise"]
	if len(jobs) != 6*cfg.Samples {
		t.Fatalf("%d noise jobs, want %d", len(jobs), 6*cfg.Samples)
	}
	var fits []float64
	for d := 0; d < 6; d++ {
		// One task in stage 1: the draw's cfg.Samples jobs.
		var s, r float64
		for _, js := range jobs[d*cfg.Samples : (d+1)*cfg.Samples] {
			var i int
			fmt.Sscan(js[1], &i)
			if js[0] != rep.Tasks[0] {
				t.Fatalf("job of %s, want %s", js[0], rep.Tasks[0])
			}
			ref := refScore(js[0], i)
			if ref == 0 {
				t.Errorf("draw %d has unanswerable prompt %d", d, i)
			}
			s += fakeResult(Job{Spec: js[0], Sample: i, Params: f.Params}).Score
			r += ref
		}
		n := float64(cfg.Samples)
		fits = append(fits, (s/n)/(r/n+RefEpsilon))
	}
	var absDiff, m, ss float64
	for k := 0; k < 3; k++ {
		if math.Abs(rep.Pairs[k][0]-fits[2*k]) > 1e-12 || math.Abs(rep.Pairs[k][1]-fits[2*k+1]) > 1e-12 {
			t.Errorf("pair %d: %v, hand-computed %v %v", k, rep.Pairs[k], fits[2*k], fits[2*k+1])
		}
		absDiff += math.Abs(fits[2*k]-fits[2*k+1]) / 3
	}
	for _, x := range fits {
		m += x / 6
	}
	for _, x := range fits {
		ss += (x - m) * (x - m)
	}
	std := math.Sqrt(ss / 5)
	if math.Abs(rep.MeanAbsDiff-absDiff) > 1e-12 || math.Abs(rep.Std-std) > 1e-12 || math.Abs(rep.Mean-m) > 1e-12 {
		t.Errorf("mean |diff| %g std %g mean %g, hand-computed %g %g %g", rep.MeanAbsDiff, rep.Std, rep.Mean, absDiff, std, m)
	}
	if !(rep.Std > 0) {
		t.Errorf("std %g: the draws gave equal fitness, the test shows nothing", rep.Std)
	}
	same := 0
	for _, d := range rep.Draws {
		if fmt.Sprint(d[0]) == fmt.Sprint(d[1]) {
			same++
		}
	}
	if same == len(rep.Draws) {
		t.Errorf("every pair drew the same prompts twice: %v", rep.Draws)
	}
	first := readFile(t, filepath.Join(cfg.Out, NoiseFile))
	var back NoiseReport
	if err := json.Unmarshal(first, &back); err != nil || fmt.Sprint(back) != fmt.Sprint(*rep) {
		t.Errorf("noise.json %s (%v), want the report %+v", first, err, *rep)
	}
	if _, err := noiseTrainer(t, cfg, &recordPool{}).Noise(context.Background(), 3, f); err != nil {
		t.Fatal(err)
	}
	if string(readFile(t, filepath.Join(cfg.Out, NoiseFile))) != string(first) {
		t.Errorf("a second report differs")
	}
}

func mustRunID(t *testing.T, cfg Config) string {
	t.Helper()
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	idJSON, _ := json.Marshal(cfg.identity())
	return promptHash(string(idJSON))
}

// TestNoiseCheckpointMean: without a NAMM file the report evaluates the
// newest checkpoint's CMA-ES mean on its stage, exactly as a file holding
// that mean and normalisation; without a checkpoint it is an error.
func TestNoiseCheckpointMean(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	_, err := noiseTrainer(t, cfg, &recordPool{}).Noise(context.Background(), 2, nil)
	if err == nil || !strings.Contains(err.Error(), "no checkpoint in") {
		t.Fatalf("no checkpoint: %v", err)
	}
	if err := runTrainer(t, cfg, &recordPool{}, 5); err == nil {
		t.Fatal("run not stopped")
	}
	rep, err := noiseTrainer(t, cfg, &recordPool{}).Noise(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := loadCheckpoint(cfg.Out, cfg.identityWithDefaults(), func(string) {})
	if err != nil || ck == nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if ck.Progress.Stage != 1 || rep.Stage != 2 || len(rep.Tasks) != 2 || !strings.Contains(rep.Member, fmt.Sprintf("checkpoint %d", ck.Seq)) {
		t.Fatalf("report %+v for checkpoint at %+v", rep, ck.Progress)
	}
	c := new(cmaes.CMAES)
	if err := c.UnmarshalBinary(ck.CMA); err != nil {
		t.Fatal(err)
	}
	f := &namm.File{Params: params(c.Mean()), Norm: ck.Norm}
	other := smallConfig(t, t.TempDir())
	other.Stages = cfg.Stages[1:]
	rep2, err := noiseTrainer(t, other, &recordPool{}).Noise(context.Background(), 2, f)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Pairs) != fmt.Sprint(rep2.Pairs) || fmt.Sprint(rep.Draws) != fmt.Sprint(rep2.Draws) {
		t.Errorf("checkpoint mean: %v %v; same mean as a file: %v %v", rep.Pairs, rep.Draws, rep2.Pairs, rep2.Draws)
	}
}
