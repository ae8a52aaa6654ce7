package evolve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/policy"
)

func runTrainer(t *testing.T, cfg Config, pool Pool, stopAfter int) error {
	t.Helper()
	tr := &Trainer{Cfg: cfg, Eval: tinyEvaluator(t), Pool: pool, StopAfter: stopAfter}
	return tr.Run(context.Background())
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestResumeBitIdentical runs a two-stage curriculum uninterrupted, and again
// interrupted three ways: stopped right after a checkpoint, stopped with a
// log line and a half-written temporary checkpoint left behind (as a kill
// between the log write and the rename would leave them), and with the newest
// checkpoint corrupted (the previous one must be used). Logs (all fields but
// seconds), the final optimiser state, best.namm and the references must be
// identical bit for bit.
func TestResumeBitIdentical(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	poolA := &fakePool{}
	if err := runTrainer(t, smallConfig(t, dirA), poolA, 0); err != nil {
		t.Fatal(err)
	}
	want := logWithoutTimes(t, dirA)
	// 2 stages x 4 generations, plus an end-of-stage validation line each.
	if len(want) != 10 {
		t.Fatalf("uninterrupted log has %d lines, want 10:\n%s", len(want), strings.Join(want, "\n"))
	}

	cfgB := smallConfig(t, dirB)
	if err := runTrainer(t, cfgB, &fakePool{}, 3); !errors.Is(err, ErrStopped) {
		t.Fatalf("first leg: %v, want ErrStopped", err)
	}
	// A generation finished its log line but not its checkpoint; a
	// checkpoint write died before its rename.
	f, err := os.OpenFile(filepath.Join(dirB, LogFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"kind":"generation","stage":0,"generation":3,"half written`)
	f.Close()
	if err := os.WriteFile(filepath.Join(dirB, ".checkpoint-00000004.ckpt.123.tmp"), []byte("NAMMEVCK partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runTrainer(t, cfgB, &fakePool{}, 3); !errors.Is(err, ErrStopped) {
		t.Fatalf("second leg: %v, want ErrStopped", err)
	}
	// Corrupt the newest checkpoint: the run must fall back to the one
	// before and redo the generation in between.
	seqs, err := listCheckpoints(dirB)
	if err != nil || len(seqs) != 2 {
		t.Fatalf("checkpoints %v (%v), want the last two", seqs, err)
	}
	newest := checkpointPath(dirB, seqs[0])
	data := readFile(t, newest)
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(newest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var msgs bytes.Buffer
	tr := &Trainer{Cfg: cfgB, Eval: tinyEvaluator(t), Pool: &fakePool{}, Messages: &msgs}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msgs.String(), "skipping checkpoint") || !strings.Contains(msgs.String(), "checksum") {
		t.Errorf("corrupt checkpoint not reported; messages:\n%s", msgs.String())
	}

	got := logWithoutTimes(t, dirB)
	if len(got) != len(want) {
		t.Fatalf("resumed log has %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("log line %d differs:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	for _, name := range []string{BestFile, "best-stage1.namm", "best-stage2.namm", RefsFile, NormFile} {
		if !bytes.Equal(readFile(t, filepath.Join(dirA, name)), readFile(t, filepath.Join(dirB, name))) {
			t.Errorf("%s differs between the runs", name)
		}
	}
	ckA, _ := loadCheckpoint(dirA, smallConfig(t, dirA).identityWithDefaults(), func(string) {})
	ckB, _ := loadCheckpoint(dirB, cfgB.identityWithDefaults(), func(string) {})
	if ckA == nil || ckB == nil || !bytes.Equal(ckA.CMA, ckB.CMA) {
		t.Errorf("final CMA-ES states differ")
	}
	// The optimiser moved: the means after successive generations differ.
	if meanHash(t, want[0]) == meanHash(t, want[1]) {
		t.Errorf("mean did not move between generations 0 and 1")
	}
	// The result is a NAMM file usable as --memory namm:PATH.
	best := filepath.Join(dirB, BestFile)
	f2, err := namm.Load(best)
	if err != nil {
		t.Fatal(err)
	}
	if f2.BaseModel != "tiny-llama" || len(f2.Params) != namm.NumParams {
		t.Errorf("best.namm: base model %q, %d params", f2.BaseModel, len(f2.Params))
	}
	if _, err := policy.New("namm:"+best, policy.Budget{}); err != nil {
		t.Errorf("--memory namm:%s: %v", best, err)
	}
}

func (c Config) identityWithDefaults() Identity {
	if err := c.setDefaults(); err != nil {
		panic(err)
	}
	return c.identity()
}

// TestCheckpointRefused: a checkpoint of another configuration is refused
// with the difference named.
func TestCheckpointRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(t, dir)
	if err := runTrainer(t, cfg, &fakePool{}, 1); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	other := cfg
	other.Population = 6
	err := runTrainer(t, other, &fakePool{}, 1)
	if !errors.Is(err, ErrIncompatibleCheckpoint) || !strings.Contains(err.Error(), "population: checkpoint 4, this run 6") {
		t.Errorf("population change: %v", err)
	}
	other = cfg
	s, _ := ParseStage("vartrack:len=650:n=5", 5, 2)
	other.Stages = append([]Stage{s}, cfg.Stages[1:]...)
	err = runTrainer(t, other, &fakePool{}, 1)
	if !errors.Is(err, ErrIncompatibleCheckpoint) || !strings.Contains(err.Error(), "stages: checkpoint [[niah_single") {
		t.Errorf("task change: %v", err)
	}
	// Every checkpoint corrupt: refuse rather than silently start over.
	seqs, _ := listCheckpoints(dir)
	for _, s := range seqs {
		os.WriteFile(checkpointPath(dir, s), []byte("garbage"), 0o644)
	}
	err = runTrainer(t, cfg, &fakePool{}, 1)
	if !errors.Is(err, ErrCorruptCheckpoint) {
		t.Errorf("all checkpoints corrupt: %v", err)
	}
}

func meanHash(t *testing.T, line string) string {
	var e LogEntry
	if err := json.Unmarshal([]byte(line+"}"), &e); err != nil {
		t.Fatal(err)
	}
	return e.MeanHash
}

// A run with Init starts its CMA-ES mean at the file's parameters and keeps the file's
// normalisation statistics; the start is part of the run's identity.
func TestInitStartsFromFile(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig(t, dir)
	init := &namm.File{Path: "start.namm", Params: make([]float32, namm.NumParams)}
	for i := range init.Params {
		init.Params[i] = float32(i%13-6) / 100
	}
	for i := range init.Norm.Mean {
		init.Norm.Mean[i], init.Norm.Var[i] = float32(i)/10, 1+float32(i)/5
	}
	cfg.Init = init
	if err := runTrainer(t, cfg, &fakePool{}, 1); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	ck, err := unmarshalCheckpoint(readFile(t, checkpointPath(dir, 0)))
	if err != nil {
		t.Fatal(err)
	}
	var c cmaes.CMAES
	if err := c.UnmarshalBinary(ck.CMA); err != nil {
		t.Fatal(err)
	}
	for i, v := range c.Mean() {
		if v != float64(init.Params[i]) {
			t.Fatalf("mean[%d] = %v, want the file's %v", i, v, init.Params[i])
		}
	}
	if ck.Norm != init.Norm {
		t.Fatalf("normalisation %+v, want the file's %+v", ck.Norm, init.Norm)
	}
	var onDisk namm.Norm
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, NormFile)), &onDisk); err != nil || onDisk != init.Norm {
		t.Fatalf("%s: %+v (%v), want the file's", NormFile, onDisk, err)
	}
	fromZeros := cfg
	fromZeros.Init = nil
	err = runTrainer(t, fromZeros, &fakePool{}, 1)
	if !errors.Is(err, ErrIncompatibleCheckpoint) || !strings.Contains(err.Error(), "init: checkpoint sha256:") {
		t.Errorf("resumed without the start: %v", err)
	}
}
