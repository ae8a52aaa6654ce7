package evolve

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recordPool scores like fakePool, except that the full-cache reference is
// 0, 0.5 or 1 by a SHA-256 of the spec and the sample (refScore), so that
// one pool mixes answerable and unanswerable prompts; it records the (spec,
// sample) of every job of a generation's or a noise batch, per batch name.
type recordPool struct {
	mu    sync.Mutex
	drawn map[string][][2]string
}

func refScore(spec string, sample int) float64 {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", spec, sample)))
	return float64(h[0]%3) / 2
}

func (p *recordPool) Close() error { return nil }

func (p *recordPool) Run(ctx context.Context, jobs []Job, onResult func(Result)) ([]Result, error) {
	p.mu.Lock()
	if p.drawn == nil {
		p.drawn = map[string][][2]string{}
	}
	for _, j := range jobs {
		if strings.HasSuffix(j.Batch, "-gen") || strings.HasSuffix(j.Batch, "-noise") {
			p.drawn[j.Batch] = append(p.drawn[j.Batch], [2]string{j.Spec, fmt.Sprint(j.Sample)})
		}
	}
	p.mu.Unlock()
	c, err := newCollector(jobs, onResult)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		r := fakeResult(j)
		if j.Params == nil {
			r.Score = refScore(j.Spec, j.Sample)
		}
		c.add(r)
	}
	return c.wait(ctx)
}

// fakeAnswerable lists, independently of the trainer, the pool indices of a
// task whose recordPool full-cache score is > 0.
func fakeAnswerable(spec string, n int) []int {
	var out []int
	for i := 0; i < n; i++ {
		if refScore(spec, i) > 0 {
			out = append(out, i)
		}
	}
	return out
}

// TestDrawAnswerable: with --draw answerable every generation draws only
// prompts whose full-cache score is > 0, exactly DrawSamples over the
// answerable prompts in pool order; with the default some drawn prompt has
// a zero reference (so the check above can fail); the whole pools'
// references are in refs.json.
func TestDrawAnswerable(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	for _, st := range cfg.Stages {
		for _, sp := range st.Train {
			if a := fakeAnswerable(sp.String(), sp.N); len(a) < cfg.Samples || len(a) == sp.N {
				t.Fatalf("fixture: %s has %d answerable prompts of %d; the test needs between %d and %d", sp, len(a), sp.N, cfg.Samples, sp.N-1)
			}
		}
	}
	zeroDrawn := func(p *recordPool) int {
		n := 0
		for _, d := range p.drawn {
			for _, js := range d {
				var i int
				fmt.Sscan(js[1], &i)
				if refScore(js[0], i) == 0 {
					n++
				}
			}
		}
		return n
	}
	anyPool := &recordPool{}
	if err := runTrainer(t, cfg, anyPool, 0); err != nil {
		t.Fatal(err)
	}
	if zeroDrawn(anyPool) == 0 {
		t.Fatalf("--draw any drew no prompt with a zero reference: the fixture does not exercise the option")
	}

	cfg = smallConfig(t, t.TempDir())
	cfg.Draw = DrawAnswerable
	pool := &recordPool{}
	if err := runTrainer(t, cfg, pool, 0); err != nil {
		t.Fatal(err)
	}
	if n := zeroDrawn(pool); n != 0 {
		t.Errorf("--draw answerable drew %d prompts with a zero reference", n)
	}
	tr := &Trainer{Cfg: cfg}
	tr.Cfg.setDefaults()
	id := tr.Cfg.identity()
	idJSON, _ := json.Marshal(id)
	runID := promptHash(string(idJSON))
	iter := 0
	for si, st := range cfg.Stages {
		for g := 0; g < cfg.Generations; g++ {
			var want [][2]string
			for ti, sp := range st.Train {
				ans := fakeAnswerable(sp.String(), sp.N)
				for _, j := range DrawSamples(cfg.Seed, iter, ti, len(ans), cfg.Samples) {
					want = append(want, [2]string{sp.String(), fmt.Sprint(ans[j])})
				}
			}
			got := pool.drawn[fmt.Sprintf("%s-i%d-gen", runID, iter)]
			// Population members share the draw: the first member's jobs.
			if len(got) != cfg.Population*len(want) || fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
				t.Errorf("stage %d generation %d: drew %v, want %v for each of %d members", si+1, iter, got, want, cfg.Population)
			}
			iter++
		}
	}
	refs, err := OpenRefCache(filepath.Join(cfg.Out, RefsFile), cfg.Model, cfg.MaxNew, func(s string) { t.Error(s) })
	if err != nil {
		t.Fatal(err)
	}
	ev := tinyEvaluator(t)
	for _, st := range cfg.Stages {
		for _, sp := range st.Train {
			for i := 0; i < sp.N; i++ {
				s, err := ev.Store.Sample(sp.String(), i)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := refs.Get(s.ID); !ok {
					t.Errorf("refs.json lacks pool prompt %s", s.ID)
				}
			}
		}
	}
}

// TestDrawAnswerableRefused: a task with fewer answerable prompts than
// --samples stops the run before the normalisation and any checkpoint, with
// the task, its pool size and the answerable count named.
func TestDrawAnswerableRefused(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	cfg.Draw = DrawAnswerable
	sp := cfg.Stages[1].Train[1] // vartrack, pool of 4
	n := len(fakeAnswerable(sp.String(), sp.N))
	cfg.Samples = n + 1
	if cfg.Samples > sp.N {
		t.Fatalf("fixture: %s has %d answerable prompts of %d", sp, n, sp.N)
	}
	for _, s := range cfg.Stages {
		for _, o := range s.Train {
			if o.String() != sp.String() && len(fakeAnswerable(o.String(), o.N)) < cfg.Samples && o.N >= cfg.Samples {
				t.Skipf("fixture: %s would be refused first", o)
			}
		}
	}
	err := runTrainer(t, cfg, &recordPool{}, 0)
	want := fmt.Sprintf("stage 2 task %s: the full cache scores > 0 on %d of the pool's %d prompts, fewer than --samples %d", sp, n, sp.N, cfg.Samples)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, NormFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("norm.json written before the refusal (%v)", err)
	}
	if seqs, _ := listCheckpoints(cfg.Out); len(seqs) != 0 {
		t.Errorf("checkpoints %v written before the refusal", seqs)
	}
}

// TestDrawAnswerableResume: a --draw answerable run stopped twice (the
// second time with refs.json deleted, so the answerable prompts are
// recomputed) draws, logs and ends exactly as an undisturbed one.
func TestDrawAnswerableResume(t *testing.T) {
	cfgA := smallConfig(t, t.TempDir())
	cfgA.Draw = DrawAnswerable
	poolA := &recordPool{}
	if err := runTrainer(t, cfgA, poolA, 0); err != nil {
		t.Fatal(err)
	}
	cfgB := smallConfig(t, t.TempDir())
	cfgB.Draw = DrawAnswerable
	poolB := &recordPool{}
	if err := runTrainer(t, cfgB, poolB, 3); !errors.Is(err, ErrStopped) {
		t.Fatalf("first leg: %v, want ErrStopped", err)
	}
	if err := os.Remove(filepath.Join(cfgB.Out, RefsFile)); err != nil {
		t.Fatal(err)
	}
	if err := runTrainer(t, cfgB, poolB, 3); !errors.Is(err, ErrStopped) {
		t.Fatalf("second leg: %v, want ErrStopped", err)
	}
	if err := runTrainer(t, cfgB, poolB, 0); err != nil {
		t.Fatal(err)
	}
	want, got := logWithoutTimes(t, cfgA.Out), logWithoutTimes(t, cfgB.Out)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("resumed log differs:\n got %v\nwant %v", got, want)
	}
	if fmt.Sprint(poolA.drawn) != fmt.Sprint(poolB.drawn) {
		t.Errorf("resumed run drew other prompts")
	}
	for _, name := range []string{BestFile, RefsFile} {
		if string(readFile(t, filepath.Join(cfgA.Out, name))) != string(readFile(t, filepath.Join(cfgB.Out, name))) {
			t.Errorf("%s differs between the runs", name)
		}
	}
	// A checkpoint of --draw any is not resumed with --draw answerable.
	other := cfgB
	other.Draw = DrawAny
	if err := runTrainer(t, other, &recordPool{}, 1); !errors.Is(err, ErrIncompatibleCheckpoint) || !strings.Contains(err.Error(), "draw: checkpoint answerable, this run ") {
		t.Errorf("draw change: %v", err)
	}
}
