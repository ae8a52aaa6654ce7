package evolve

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/namm"
)

// TestResumeRestoresFiles: after an interruption, a temporary file of a
// killed checkpoint write is removed, and a missing, truncated or corrupted
// evolve.jsonl or norm.json is rewritten from the checkpoint; the finished
// run's files equal an undisturbed run's.
func TestResumeRestoresFiles(t *testing.T) {
	dirA := t.TempDir()
	if err := runTrainer(t, smallConfig(t, dirA), &fakePool{}, 0); err != nil {
		t.Fatal(err)
	}
	want := logWithoutTimes(t, dirA)

	for _, damage := range []struct {
		name string
		do   func(dir string) error
	}{
		{"log missing", func(dir string) error { return os.Remove(filepath.Join(dir, LogFile)) }},
		{"log truncated", func(dir string) error {
			data, err := os.ReadFile(filepath.Join(dir, LogFile))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, LogFile), data[:len(data)/3], 0o644)
		}},
		{"norm.json corrupted", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, NormFile), []byte(`{"mean": [1, 2`), 0o644)
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig(t, dir)
			if err := runTrainer(t, cfg, &fakePool{}, 3); !errors.Is(err, ErrStopped) {
				t.Fatalf("first leg: %v", err)
			}
			if err := damage.do(dir); err != nil {
				t.Fatal(err)
			}
			// What a checkpoint write killed before its rename leaves.
			tmp, err := os.CreateTemp(dir, ".checkpoint-00000009.ckpt.tmp*")
			if err != nil {
				t.Fatal(err)
			}
			tmp.WriteString("NAMMEVCK partial")
			tmp.Close()
			var msgs bytes.Buffer
			tr := &Trainer{Cfg: cfg, Eval: tinyEvaluator(t), Pool: &fakePool{}, Messages: &msgs}
			if err := tr.Run(t.Context()); err != nil {
				t.Fatalf("resume: %v\n%s", err, msgs.String())
			}
			if _, err := os.Stat(tmp.Name()); !os.IsNotExist(err) {
				t.Errorf("temporary file %s left after the resume", filepath.Base(tmp.Name()))
			}
			got := logWithoutTimes(t, dir)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("log after the resume differs from the undisturbed run's:\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, name := range []string{NormFile, BestFile} {
				if !bytes.Equal(readFile(t, filepath.Join(dirA, name)), readFile(t, filepath.Join(dir, name))) {
					t.Errorf("%s differs from the undisturbed run's", name)
				}
			}
		})
	}
}

// TestStagesCheckedBeforeRunning: a bad task in a later stage, or a bad
// sigma0, is refused before the normalisation statistics and the first
// evaluation, not when its stage starts.
func TestStagesCheckedBeforeRunning(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	bad, err := ParseStage("vartrack:len=40:n=4", 4, 2) // too short for the task's text
	if err != nil {
		t.Fatal(err)
	}
	cfg.Stages = append(cfg.Stages, bad)
	pool := &fakePool{}
	err = runTrainer(t, cfg, pool, 0)
	if err == nil || !strings.Contains(err.Error(), "stage 3") {
		t.Fatalf("bad third stage: %v, want an error naming stage 3", err)
	}
	if pool.jobs != 0 {
		t.Errorf("%d jobs ran before the bad stage was found", pool.jobs)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, NormFile)); !os.IsNotExist(err) {
		t.Errorf("normalisation ran before the bad stage was found")
	}

	// Prompts longer than the model's positions (4,096 in the fixture).
	cfg = smallConfig(t, t.TempDir())
	long, err := ParseStage("niah_single:len=5000:n=2", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Stages = append(cfg.Stages, long)
	if err := runTrainer(t, cfg, pool, 0); err == nil || !strings.Contains(err.Error(), "4096 positions") {
		t.Errorf("prompts past the positions: %v", err)
	}

	cfg = smallConfig(t, t.TempDir())
	cfg.Sigma0 = -1
	if err := runTrainer(t, cfg, pool, 0); err == nil || !strings.Contains(err.Error(), "sigma0") {
		t.Errorf("sigma0 -1: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, NormFile)); !os.IsNotExist(err) {
		t.Errorf("normalisation ran with sigma0 -1")
	}
}

// TestLastStageKeepsNoBestState: the optimiser state of the best mean is
// what the next stage starts from; in the last stage there is none, and the
// checkpoint does not carry a second copy of the state.
func TestLastStageKeepsNoBestState(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(t, dir)
	cfg.Stages = cfg.Stages[:1]
	tr := &Trainer{Cfg: cfg, Eval: tinyEvaluator(t), Pool: &fakePool{}, StopAfter: 2, SVG: true}
	if err := tr.Run(t.Context()); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	for _, f := range []string{"fitness.png", "fitness.svg", "sigma.svg", "cache.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("curves with SVG: %v", err)
		}
	}
	ck, err := loadCheckpoint(dir, cfg.identityWithDefaults(), func(string) {})
	if err != nil || ck == nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if !ck.HasBest || ck.BestCMA != nil {
		t.Errorf("last stage: HasBest %v, best state of %d bytes; want a best and no state", ck.HasBest, len(ck.BestCMA))
	}
	dir2 := t.TempDir()
	cfg2 := smallConfig(t, dir2)
	if err := runTrainer(t, cfg2, &fakePool{}, 2); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	ck2, err := loadCheckpoint(dir2, cfg2.identityWithDefaults(), func(string) {})
	if err != nil || ck2 == nil || ck2.BestCMA == nil {
		t.Errorf("first of two stages: the best state is needed by stage 2 (%v)", err)
	}
}

// TestFullModeEigenEvery: full mode defaults to Hansen's lazy interval, and
// that interval is part of the identity, except 1 (every generation), which
// earlier checkpoints of full mode were made with.
func TestFullModeEigenEvery(t *testing.T) {
	cfg := smallConfig(t, t.TempDir())
	cfg.CMA = cmaes.ModeFull
	id := cfg.identityWithDefaults()
	if want := cmaes.LazyInterval(namm.NumParams, cfg.Population); id.EigenEvery != want || want < 2 {
		t.Errorf("full mode: eigen_every %d, want the lazy interval %d", id.EigenEvery, want)
	}
	cfg = smallConfig(t, t.TempDir())
	cfg.CMA, cfg.EigenEvery = cmaes.ModeFull, 1
	if id := cfg.identityWithDefaults(); id.EigenEvery != 0 {
		t.Errorf("--eigen-every 1: identity holds %d, want it omitted as in earlier checkpoints", id.EigenEvery)
	}
	cfg = smallConfig(t, t.TempDir())
	cfg.CMA = ""
	if id := cfg.identityWithDefaults(); id.CMA != "sep" || id.EigenEvery != 0 {
		t.Errorf("default: cma %q eigen_every %d, want sep and none", id.CMA, id.EigenEvery)
	}
}
