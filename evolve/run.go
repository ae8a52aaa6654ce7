package evolve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/internal/progress"
	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/task/gen"
)

// Config describes an evolution run. Every field but Out is part of the
// run's Identity (a checkpoint made with other values is refused).
type Config struct {
	Model       string  // ModelFingerprint of the model evaluated
	BaseModel   string  // recorded in the NAMM files written (e.g. the model directory)
	Stages      []Stage // curriculum, at least one
	Generations int     // CMA-ES generations per stage, > 0
	Population  int     // lambda, >= 2 (default 32)
	Samples     int     // training prompts drawn per task per generation (default 64)
	ValSamples  int     // validation prompts per task (the validation pools' size)
	Sigma0      float64 // initial step size (default 0.065)
	Seed        int64   // seeds CMA-ES and the sample draws
	CMA         cmaes.Mode
	// EigenEvery is, in full mode, how many generations one
	// eigendecomposition of the covariance serves (cmaes.Config.EigenInterval);
	// 0 means cmaes.LazyInterval, 1 every generation (the reference).
	EigenEvery int
	EvalEvery  int // validate the mean every EvalEvery generations and at 0 (default 10)
	MaxNew     int // cap on generated tokens per prompt; 0 keeps each task's own
	// NormSamples is how many prompts of the first task's training pool the
	// normalisation statistics are computed on; 0 means all (the reference).
	NormSamples int
	// MemoryWeight w > 0 adds w x (1 - KV tokens / the full cache's KV
	// tokens) to every fitness, training and validation: the memory saved
	// counts next to the score. 0 is the reference (the score alone).
	MemoryWeight float64
	// Draw picks the prompts a generation draws from a task's pool: DrawAny
	// (every prompt, the reference) or DrawAnswerable (only those whose
	// full-cache score is > 0, so that no task's normalisation divides by a
	// zero reference).
	Draw string
	// Init, when set, starts the run from this NAMM instead of all zeros: the
	// CMA-ES mean begins at its parameters and its normalisation statistics
	// replace those computed on the first task, so generation 0 evaluates
	// the NAMM exactly as it runs (e.g. one evolved on another model).
	Init *namm.File
	Out  string // output directory
}

// Config.Draw values.
const (
	DrawAny        = "any"
	DrawAnswerable = "answerable"
)

func (c *Config) setDefaults() error {
	if c.Population == 0 {
		c.Population = cmaes.DefaultLambda
	}
	if c.Samples == 0 {
		c.Samples = 64
	}
	if c.ValSamples == 0 && len(c.Stages) > 0 && len(c.Stages[0].Val) > 0 {
		c.ValSamples = c.Stages[0].Val[0].N
	}
	if c.Sigma0 == 0 {
		c.Sigma0 = cmaes.DefaultSigma0
	}
	if c.CMA == "" {
		c.CMA = cmaes.ModeSep
	}
	if c.CMA == cmaes.ModeFull && c.EigenEvery == 0 {
		c.EigenEvery = cmaes.LazyInterval(namm.NumParams, c.Population)
	}
	if c.CMA == cmaes.ModeSep {
		c.EigenEvery = 0 // sep mode's factors are its diagonal: nothing to reuse
	}
	if c.EvalEvery == 0 {
		c.EvalEvery = 10
	}
	if c.Draw == "" {
		c.Draw = DrawAny
	}
	switch {
	case c.Draw != DrawAny && c.Draw != DrawAnswerable:
		return fmt.Errorf("evolve: draw = %q, want %s or %s", c.Draw, DrawAny, DrawAnswerable)
	case len(c.Stages) == 0:
		return errors.New("evolve: no stage given")
	case c.Generations <= 0:
		return fmt.Errorf("evolve: generations = %d, must be > 0", c.Generations)
	case c.Population < 2:
		return fmt.Errorf("evolve: population = %d, must be >= 2", c.Population)
	case c.Samples < 1:
		return fmt.Errorf("evolve: samples = %d, must be >= 1", c.Samples)
	case c.EvalEvery < 1:
		return fmt.Errorf("evolve: eval-every = %d, must be >= 1", c.EvalEvery)
	case c.MemoryWeight < 0:
		return fmt.Errorf("evolve: memory-weight = %g, must be >= 0", c.MemoryWeight)
	case !(c.Sigma0 > 0) || math.IsInf(c.Sigma0, 0):
		return fmt.Errorf("evolve: sigma0 = %g, must be finite and > 0", c.Sigma0)
	case c.EigenEvery < 0:
		return fmt.Errorf("evolve: eigen-every = %d, must be >= 0", c.EigenEvery)
	case c.MaxNew < 0 || c.NormSamples < 0:
		return fmt.Errorf("evolve: max-new (%d) and norm-samples (%d) must be >= 0", c.MaxNew, c.NormSamples)
	case c.Out == "":
		return errors.New("evolve: no output directory")
	}
	for i, st := range c.Stages {
		if len(st.Train) == 0 || len(st.Train) != len(st.Val) {
			return fmt.Errorf("evolve: stage %d has %d training and %d validation tasks", i+1, len(st.Train), len(st.Val))
		}
		for t, sp := range st.Train {
			if sp.N < c.Samples {
				return fmt.Errorf("evolve: stage %d task %s: pool of %d prompts, fewer than --samples %d (raise n= in the spec)", i+1, sp, sp.N, c.Samples)
			}
			if st.Val[t].N < 1 {
				return fmt.Errorf("evolve: stage %d task %s: empty validation pool", i+1, sp)
			}
		}
	}
	return nil
}

func (c *Config) identity() Identity {
	id := Identity{Params: namm.NumParams, Population: c.Population, CMA: string(c.CMA), Sigma0: c.Sigma0,
		Seed: c.Seed, Samples: c.Samples, ValSamples: c.ValSamples, EvalEvery: c.EvalEvery,
		Generations: c.Generations, MaxNew: c.MaxNew, NormSamples: c.NormSamples, Model: c.Model,
		MemoryWeight: c.MemoryWeight}
	if c.Draw == DrawAnswerable { // "any" is omitted, as in earlier checkpoints
		id.Draw = c.Draw
	}
	if c.EigenEvery > 1 { // 1 is the reference's (and earlier checkpoints') every-generation update
		id.EigenEvery = c.EigenEvery
	}
	if c.Init != nil {
		id.Init = c.Init.Fingerprint()
	}
	for _, st := range c.Stages {
		var specs []string
		for _, sp := range st.Train {
			specs = append(specs, sp.String())
		}
		id.Stages = append(id.Stages, specs)
	}
	return id
}

// Files written in Config.Out.
const (
	LogFile  = "evolve.jsonl"
	RefsFile = "refs.json"
	NormFile = "norm.json"
	BestFile = "best.namm" // best validated mean of the latest stage: the result
)

// ErrStopped is returned by Run when Trainer.StopAfter generations were done.
var ErrStopped = errors.New("evolve: stopped after the requested number of generations")

// Trainer runs an evolution.
type Trainer struct {
	Cfg  Config
	Eval *Evaluator // local model: samples, normalisation
	Pool Pool       // evaluates the jobs
	// Progress receives a progress bar per batch (nil: none).
	Progress io.Writer
	// Messages receives one line per generation and warnings (nil: none).
	Messages io.Writer
	// SVG also draws the curves as SVG files.
	SVG bool
	// StopAfter > 0 makes Run return ErrStopped after that many generations
	// of this call (tests use it to interrupt a run between checkpoints).
	StopAfter int

	id    Identity
	runID string
	refs  *RefCache
	ck    checkpoint
	cma   *cmaes.CMAES
	log   []LogEntry
	// answerable[stage][task] lists the pool indices whose full-cache score
	// is > 0 (Draw == DrawAnswerable only).
	answerable [][][]int
}

func (t *Trainer) say(format string, a ...any) {
	if t.Messages != nil {
		fmt.Fprintf(t.Messages, format+"\n", a...)
	}
}

// Run trains until every stage is done, resuming from the newest valid
// checkpoint in Cfg.Out.
func (t *Trainer) Run(ctx context.Context) error {
	if err := t.Cfg.setDefaults(); err != nil {
		return err
	}
	cfg := &t.Cfg
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return fmt.Errorf("evolve: %w", err)
	}
	// A checkpoint or log killed mid-write leaves its temporary file.
	if err := atomicfile.RemoveTemps(cfg.Out); err != nil {
		return fmt.Errorf("evolve: %w", err)
	}
	// Every stage's tasks are generated and checked before the first
	// evaluation, so that a bad later stage fails now, not hours in.
	if err := t.checkStages(); err != nil {
		return err
	}
	t.id = cfg.identity()
	idJSON, _ := json.Marshal(t.id)
	t.runID = promptHash(string(idJSON))
	warn := func(s string) { t.say("warning: %s", s) }
	var err error
	if t.refs, err = OpenRefCache(filepath.Join(cfg.Out, RefsFile), cfg.Model, cfg.MaxNew, warn); err != nil {
		return err
	}
	// Before the normalisation and the first checkpoint: a pool with too
	// few answerable prompts stops the run before anything else is spent.
	if cfg.Draw == DrawAnswerable {
		if err := t.findAnswerable(ctx); err != nil {
			return err
		}
	}
	ck, err := loadCheckpoint(cfg.Out, t.id, warn)
	if err != nil {
		return fmt.Errorf("evolve: %w", err)
	}
	if ck == nil {
		if err := t.start(ctx); err != nil {
			return err
		}
	} else {
		t.ck = *ck
		t.cma = new(cmaes.CMAES)
		if err := t.cma.UnmarshalBinary(ck.CMA); err != nil {
			return fmt.Errorf("evolve: checkpoint %d: %w", ck.Seq, err)
		}
		if err := t.restoreFiles(); err != nil {
			return err
		}
		t.say("resuming from checkpoint %d: stage %d, generation %d", ck.Seq, ck.Progress.Stage+1, ck.Progress.Iter)
	}
	done := 0
	for t.ck.Progress.Stage < len(cfg.Stages) {
		stage := cfg.Stages[t.ck.Progress.Stage]
		for {
			g := t.ck.Progress.StageGen
			var val *valResult
			if g%cfg.EvalEvery == 0 || g == cfg.Generations {
				if val, err = t.validate(ctx, stage); err != nil {
					return err
				}
			}
			if g == cfg.Generations {
				if err := t.endStage(val); err != nil {
					return err
				}
				break
			}
			if err := t.generation(ctx, stage, val); err != nil {
				return err
			}
			done++
			if t.StopAfter > 0 && done >= t.StopAfter {
				return ErrStopped
			}
		}
	}
	t.say("done: %s", filepath.Join(cfg.Out, BestFile))
	return nil
}

// checkStages generates every stage's training and validation prompts and
// checks them: validation disjoint from training, and every prompt with its
// answer within the model's positions.
func (t *Trainer) checkStages() error {
	positions := t.Eval.Engine.Config.MaxPositionEmbeddings
	for i, st := range t.Cfg.Stages {
		if err := checkDisjoint(t.Eval.Store, st); err != nil {
			return fmt.Errorf("evolve: stage %d: %w", i+1, err)
		}
		for _, sp := range append(append([]gen.Spec(nil), st.Train...), st.Val...) {
			samples, err := t.Eval.Store.Get(sp.String())
			if err != nil {
				return fmt.Errorf("evolve: stage %d: %w", i+1, err)
			}
			for _, smp := range samples {
				budget := smp.MaxNewTokens
				if t.Cfg.MaxNew > 0 && t.Cfg.MaxNew < budget {
					budget = t.Cfg.MaxNew
				}
				if n := len(t.Eval.promptIDs(smp)); n+budget > positions {
					return fmt.Errorf("evolve: stage %d task %s: prompt %s has %d tokens, with %d new tokens more than the model's %d positions (namm does not extrapolate positions): lower len=", i+1, sp, smp.ID, n, budget, positions)
				}
			}
		}
	}
	return nil
}

// findAnswerable computes the full-cache references of every stage's whole
// training pools (kept in refs.json, so a resumed run finds them there or
// recomputes the same ones) and keeps, per task, the prompts whose reference
// score is > 0. A task with fewer of them than Samples is an error, before
// the first generation.
func (t *Trainer) findAnswerable(ctx context.Context) error {
	t.answerable = make([][][]int, len(t.Cfg.Stages))
	for si, st := range t.Cfg.Stages {
		all := make([][]int, len(st.Train))
		for ti, sp := range st.Train {
			for i := 0; i < sp.N; i++ {
				all[ti] = append(all[ti], i)
			}
		}
		if err := t.ensureRefs(ctx, st.Train, all, fmt.Sprintf("pool-s%d", si+1)); err != nil {
			return err
		}
		t.answerable[si] = make([][]int, len(st.Train))
		for ti, sp := range st.Train {
			for _, i := range all[ti] {
				s, err := t.Eval.Store.Sample(sp.String(), i)
				if err != nil {
					return err
				}
				if r, _ := t.refs.Get(s.ID); r.Score > 0 {
					t.answerable[si][ti] = append(t.answerable[si][ti], i)
				}
			}
			if n := len(t.answerable[si][ti]); n < t.Cfg.Samples {
				return fmt.Errorf("evolve: --draw answerable: stage %d task %s: the full cache scores > 0 on %d of the pool's %d prompts, fewer than --samples %d (raise n= or --pool, or lower --samples)", si+1, sp, n, sp.N, t.Cfg.Samples)
			}
		}
		t.say("stage %d: answerable prompts per task (full-cache score > 0): %v of %v", si+1, lens(t.answerable[si]), poolSizes(st.Train))
	}
	return nil
}

func lens(xs [][]int) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = len(x)
	}
	return out
}

func poolSizes(specs []gen.Spec) []int {
	out := make([]int, len(specs))
	for i, sp := range specs {
		out[i] = sp.N
	}
	return out
}

// drawTrain returns the pool indices task ti of stage si draws at iteration
// iter with seed: DrawSamples over the whole pool, or over the answerable
// prompts (in pool order) with Draw == DrawAnswerable.
func (t *Trainer) drawTrain(si int, seed int64, iter, ti int) []int {
	cfg := &t.Cfg
	if cfg.Draw != DrawAnswerable {
		return DrawSamples(seed, iter, ti, cfg.Stages[si].Train[ti].N, cfg.Samples)
	}
	ans := t.answerable[si][ti]
	idx := DrawSamples(seed, iter, ti, len(ans), cfg.Samples)
	for k, j := range idx {
		idx[k] = ans[j]
	}
	return idx
}

// restoreFiles rewrites what a resumed checkpoint records of the run's
// files: the log (missing, truncated, or with lines of a generation being
// redone) and norm.json.
func (t *Trainer) restoreFiles() error {
	out := t.Cfg.Out
	data, _ := json.MarshalIndent(t.ck.Norm, "", " ")
	if old, err := os.ReadFile(filepath.Join(out, NormFile)); err != nil || !bytes.Equal(old, data) {
		if err := atomicfile.WriteFile(filepath.Join(out, NormFile), data); err != nil {
			return err
		}
	}
	path := filepath.Join(out, LogFile)
	if t.ck.Log == nil && t.ck.LogBytes > 0 {
		// A checkpoint of an earlier version: the log holds the entries.
		var err error
		if t.log, err = rewindLog(path, t.ck.LogBytes); err != nil {
			return fmt.Errorf("evolve: %w (this checkpoint predates log recovery: restore %s, or delete %s/checkpoint-*.ckpt to start over)", err, path, out)
		}
		return nil
	}
	t.log = t.ck.Log
	var buf bytes.Buffer
	for _, e := range t.log {
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("evolve: log: %w", err)
		}
		buf.Write(append(line, '\n'))
	}
	if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, buf.Bytes()) {
		if err == nil && len(old) < buf.Len() || errors.Is(err, fs.ErrNotExist) && buf.Len() > 0 {
			t.say("warning: %s was missing or cut short: rewritten from checkpoint %d", path, t.ck.Seq)
		}
		if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
			return err
		}
	}
	t.ck.LogBytes = int64(buf.Len())
	if len(t.log) > 0 {
		return writeCurves(out, t.log, t.SVG)
	}
	return nil
}

// start computes the normalisation and writes the first checkpoint.
func (t *Trainer) start(ctx context.Context) error {
	cfg := &t.Cfg
	var norm namm.Norm
	var mean0 []float64
	if cfg.Init != nil {
		t.say("starting from %s (its parameters and normalisation statistics)", cfg.Init.Path)
		norm = cfg.Init.Norm
		mean0 = make([]float64, len(cfg.Init.Params))
		for i, v := range cfg.Init.Params {
			mean0[i] = float64(v)
		}
	} else {
		first := cfg.Stages[0].Train[0]
		samples, err := t.Eval.Store.Get(first.String())
		if err != nil {
			return fmt.Errorf("evolve: %w", err)
		}
		if cfg.NormSamples > 0 && cfg.NormSamples < len(samples) {
			samples = samples[:cfg.NormSamples]
		}
		t.say("normalisation statistics on %d prompts of %s", len(samples), first)
		if norm, err = t.Eval.Normalization(samples, cfg.MaxNew); err != nil {
			return fmt.Errorf("evolve: %w", err)
		}
	}
	data, _ := json.MarshalIndent(norm, "", " ")
	if err := atomicfile.WriteFile(filepath.Join(cfg.Out, NormFile), data); err != nil {
		return err
	}
	var err error
	t.cma, err = cmaes.New(cmaes.Config{N: namm.NumParams, Lambda: cfg.Population, Sigma0: cfg.Sigma0, Mode: cfg.CMA, Seed: cfg.Seed, EigenInterval: cfg.EigenEvery, Mean0: mean0})
	if err != nil {
		return fmt.Errorf("evolve: %w", err)
	}
	os.Remove(filepath.Join(cfg.Out, LogFile)) // a log without a checkpoint is stale
	t.ck = checkpoint{checkpointMeta: checkpointMeta{Identity: t.id, Seq: -1, Norm: norm}}
	return t.save()
}

// save writes the next checkpoint.
func (t *Trainer) save() error {
	var err error
	if t.ck.CMA, err = t.cma.MarshalBinary(); err != nil {
		return fmt.Errorf("evolve: %w", err)
	}
	t.ck.Seq++
	t.ck.Log = t.log
	return saveCheckpoint(t.Cfg.Out, &t.ck)
}

// params converts a CMA-ES vector to NAMM parameters.
func params(x []float64) []float32 {
	p := make([]float32, len(x))
	for i, v := range x {
		p[i] = float32(v)
	}
	return p
}

// jobFor makes the job of sample i of spec under params (nil: full cache).
func (t *Trainer) jobFor(batch string, index int, spec gen.Spec, i int, p []float32) (Job, error) {
	s, err := t.Eval.Store.Sample(spec.String(), i)
	if err != nil {
		return Job{}, err
	}
	return Job{Batch: batch, Index: index, Model: t.Cfg.Model, Spec: spec.String(), Sample: i,
		PromptHash: promptHash(s.Prompt), MaxNew: t.Cfg.MaxNew, Params: p, Norm: t.ck.Norm}, nil
}

// sampleRef is one drawn prompt: task t's pool, index i.
type sampleRef struct {
	t, i int
}

// ensureRefs computes the missing full-cache references of the samples.
func (t *Trainer) ensureRefs(ctx context.Context, specs []gen.Spec, draws [][]int, what string) error {
	var jobs []Job
	var ids []string
	for ti, idx := range draws {
		for _, i := range idx {
			s, err := t.Eval.Store.Sample(specs[ti].String(), i)
			if err != nil {
				return err
			}
			if _, ok := t.refs.Get(s.ID); ok || contains(ids, s.ID) {
				continue
			}
			j, err := t.jobFor(fmt.Sprintf("%s-i%d-%s-ref", t.runID, t.ck.Progress.Iter, what), len(jobs), specs[ti], i, nil)
			if err != nil {
				return err
			}
			jobs = append(jobs, j)
			ids = append(ids, s.ID)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	res, err := t.runBatch(ctx, jobs, fmt.Sprintf("full-cache references (%s)", what))
	if err != nil {
		return err
	}
	refs := map[string]RefScore{}
	for k, r := range res {
		refs[ids[k]] = RefScore{Score: r.Score, KVMean: r.KVMean}
	}
	return t.refs.Put(refs)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (t *Trainer) runBatch(ctx context.Context, jobs []Job, desc string) ([]Result, error) {
	bar := progress.New(t.Progress, len(jobs), desc)
	res, err := t.Pool.Run(ctx, jobs, func(Result) { bar.Add(1) })
	if err != nil {
		bar.Break()
		return nil, fmt.Errorf("evolve: %s: %w", desc, err)
	}
	return res, nil
}

// score turns a member's results into fitness and its mean cache size.
// res holds the member's results task by task in draw order.
func (t *Trainer) score(specs []gen.Spec, draws [][]int, res []Result) (fit, kv, refKV float64, err error) {
	scores := make([][]float64, len(draws))
	refs := make([][]float64, len(draws))
	k := 0
	for ti, idx := range draws {
		for _, i := range idx {
			s, err := t.Eval.Store.Sample(specs[ti].String(), i)
			if err != nil {
				return 0, 0, 0, err
			}
			ref, ok := t.refs.Get(s.ID)
			if !ok {
				return 0, 0, 0, fmt.Errorf("evolve: no reference for %s", s.ID)
			}
			scores[ti] = append(scores[ti], res[k].Score)
			refs[ti] = append(refs[ti], ref.Score)
			kv += res[k].KVMean
			refKV += ref.KVMean
			k++
		}
	}
	if fit, err = Fitness(scores, refs); err != nil {
		return 0, 0, 0, err
	}
	kv, refKV = kv/float64(k), refKV/float64(k)
	return WithMemory(fit, kv, refKV, t.Cfg.MemoryWeight), kv, refKV, nil
}

// WithMemory adds w x (1 - kv/refKV), the share of the full cache's KV
// tokens saved, to a fitness (Config.MemoryWeight).
func WithMemory(fit, kv, refKV, w float64) float64 {
	if w == 0 || refKV <= 0 {
		return fit
	}
	return fit + w*(1-kv/refKV)
}

// valResult is a validation of the mean.
type valResult struct {
	fitness, kv float64
}

// validate scores the current mean on the stage's validation pools and keeps
// it as the best when it improves.
func (t *Trainer) validate(ctx context.Context, stage Stage) (*valResult, error) {
	draws := make([][]int, len(stage.Val))
	for ti, sp := range stage.Val {
		for i := 0; i < sp.N; i++ {
			draws[ti] = append(draws[ti], i)
		}
	}
	if err := t.ensureRefs(ctx, stage.Val, draws, "val"); err != nil {
		return nil, err
	}
	mean := t.cma.Mean()
	p := params(mean)
	batch := fmt.Sprintf("%s-i%d-val", t.runID, t.ck.Progress.Iter)
	var jobs []Job
	for ti, idx := range draws {
		for _, i := range idx {
			j, err := t.jobFor(batch, len(jobs), stage.Val[ti], i, p)
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, j)
		}
	}
	res, err := t.runBatch(ctx, jobs, fmt.Sprintf("validation g%d", t.ck.Progress.Iter))
	if err != nil {
		return nil, err
	}
	fit, kv, _, err := t.score(stage.Val, draws, res)
	if err != nil {
		return nil, err
	}
	if t.improves(fit, kv) {
		t.ck.HasBest, t.ck.BestVal, t.ck.BestIter, t.ck.BestKV = true, fit, t.ck.Progress.Iter, kv
		// The next stage starts from the best mean's optimiser state; the
		// last stage has no next one, and its checkpoints stay half the size.
		t.ck.BestCMA = nil
		if t.ck.Progress.Stage+1 < len(t.Cfg.Stages) {
			if t.ck.BestCMA, err = t.cma.MarshalBinary(); err != nil {
				return nil, fmt.Errorf("evolve: %w", err)
			}
		}
		f := &namm.File{Params: p, Norm: t.ck.Norm, BaseModel: t.Cfg.BaseModel, Generation: t.ck.Progress.Iter, Fitness: fit}
		if err := namm.Save(filepath.Join(t.Cfg.Out, BestFile), f); err != nil {
			return nil, err
		}
		if err := namm.Save(filepath.Join(t.Cfg.Out, fmt.Sprintf("best-stage%d.namm", t.ck.Progress.Stage+1)), f); err != nil {
			return nil, err
		}
	}
	t.say("stage %d generation %d: validation %.6g (best %.6g at %d), kv %.1f", t.ck.Progress.Stage+1, t.ck.Progress.Iter, fit, t.ck.BestVal, t.ck.BestIter, kv)
	return &valResult{fitness: fit, kv: kv}, nil
}

// improves reports whether a validated mean beats the stage's best: a higher
// fitness, or the same fitness with a smaller cache. The reference keeps
// only strict improvements; then the all-zero start (fitness exactly 1, the
// full cache) is never replaced by a mean that scores as well with fewer
// tokens, and a small validation set ties often.
func (t *Trainer) improves(fit, kv float64) bool {
	switch {
	case !t.ck.HasBest || fit > t.ck.BestVal:
		return true
	case fit == t.ck.BestVal:
		return t.ck.BestKV == 0 || kv < t.ck.BestKV
	}
	return false
}

// generation runs one CMA-ES generation and checkpoints.
func (t *Trainer) generation(ctx context.Context, stage Stage, val *valResult) error {
	start := time.Now()
	iter := t.ck.Progress.Iter
	draws := make([][]int, len(stage.Train))
	for ti := range stage.Train {
		draws[ti] = t.drawTrain(t.ck.Progress.Stage, t.Cfg.Seed, iter, ti)
	}
	if err := t.ensureRefs(ctx, stage.Train, draws, "train"); err != nil {
		return err
	}
	sigma := t.cma.Sigma()
	xs := t.cma.Ask()
	batch := fmt.Sprintf("%s-i%d-gen", t.runID, iter)
	var jobs []Job
	for _, x := range xs {
		p := params(x)
		for ti, idx := range draws {
			for _, i := range idx {
				j, err := t.jobFor(batch, len(jobs), stage.Train[ti], i, p)
				if err != nil {
					return err
				}
				jobs = append(jobs, j)
			}
		}
	}
	res, err := t.runBatch(ctx, jobs, fmt.Sprintf("generation %d", iter))
	if err != nil {
		return err
	}
	per := len(jobs) / len(xs)
	fits := make([]float64, len(xs))
	var kvSum, refKV float64
	for m := range xs {
		var kv float64
		if fits[m], kv, refKV, err = t.score(stage.Train, draws, res[m*per:(m+1)*per]); err != nil {
			return err
		}
		kvSum += kv
	}
	if err := t.cma.Tell(xs, fits); err != nil {
		return fmt.Errorf("evolve: %w", err)
	}
	e := LogEntry{Kind: "generation", Stage: t.ck.Progress.Stage, Iter: iter, StageGen: t.ck.Progress.StageGen,
		Fitness: fits, MeanFitness: mean(fits), BestFitness: maxOf(fits), Sigma: sigma,
		KVMean: kvSum / float64(len(xs)), RefKVMean: refKV, CandidatesHash: hashVectors(xs...), MeanHash: hashVectors(t.cma.Mean())}
	t.ck.Progress.StageGen++
	t.ck.Progress.Iter++
	if err := t.record(e, val, start); err != nil {
		return err
	}
	t.say("stage %d generation %d: fitness mean %.6g best %.6g, sigma %.6g, kv %.1f (full %.1f), %.1fs",
		e.Stage+1, e.Iter, e.MeanFitness, e.BestFitness, e.Sigma, e.KVMean, e.RefKVMean, time.Since(start).Seconds())
	return t.save()
}

// record appends a log line (with the validation, if any), redraws the
// curves and notes the log length for the next checkpoint.
func (t *Trainer) record(e LogEntry, val *valResult, start time.Time) error {
	if val != nil {
		e.Val, e.ValKVMean = &val.fitness, &val.kv
	}
	if t.ck.HasBest {
		b := t.ck.BestVal
		e.BestVal = &b
	}
	e.Seconds = time.Since(start).Seconds()
	size, err := appendLog(filepath.Join(t.Cfg.Out, LogFile), e)
	if err != nil {
		return err
	}
	t.ck.LogBytes = size
	t.log = append(t.log, e)
	return writeCurves(t.Cfg.Out, t.log, t.SVG)
}

// endStage logs the stage's last validation and moves to the next stage,
// which starts from the optimiser state of this stage's best mean.
func (t *Trainer) endStage(val *valResult) error {
	e := LogEntry{Kind: "validation", Stage: t.ck.Progress.Stage, Iter: t.ck.Progress.Iter, StageGen: t.ck.Progress.StageGen,
		Sigma: t.cma.Sigma(), MeanHash: hashVectors(t.cma.Mean())}
	if err := t.record(e, val, time.Now()); err != nil {
		return err
	}
	t.say("stage %d done: best validation %.6g at generation %d", t.ck.Progress.Stage+1, t.ck.BestVal, t.ck.BestIter)
	if t.ck.Progress.Stage+1 < len(t.Cfg.Stages) {
		next := new(cmaes.CMAES)
		if err := next.UnmarshalBinary(t.ck.BestCMA); err != nil {
			return fmt.Errorf("evolve: best state of stage %d: %w", t.ck.Progress.Stage+1, err)
		}
		t.cma = next
	}
	t.ck.Progress.Stage++
	t.ck.Progress.StageGen = 0
	t.ck.HasBest, t.ck.BestVal, t.ck.BestIter, t.ck.BestKV, t.ck.BestCMA = false, 0, 0, 0, nil
	return t.save()
}

func maxOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs[1:] {
		if x > m {
			m = x
		}
	}
	return m
}
