package evolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/namm"
)

// NoiseFile is the fitness-noise report written in Config.Out.
const NoiseFile = "noise.json"

// NoiseSeedOffset is added to Config.Seed for the noise draws, so that they
// are independent of the training draws of every generation.
const NoiseSeedOffset = 2_000_003

// NoiseReport is the fitness of one member on pairs of independent draws of
// the training prompts (same member, same tasks, other prompts).
type NoiseReport struct {
	Member  string   `json:"member"` // what was evaluated
	Stage   int      `json:"stage"`  // 1-based stage whose training pools were drawn from
	Tasks   []string `json:"tasks"`
	Samples int      `json:"samples"` // prompts per task per draw
	Draw    string   `json:"draw"`
	// Pairs[p] is the fitness on the two draws of pair p.
	Pairs [][2]float64 `json:"pairs"`
	// Draws[p][k][task] lists the pool indices of draw k of pair p.
	Draws [][2][][]int `json:"draws"`
	Mean  float64      `json:"mean"` // over all 2 x pairs fitnesses
	// MeanAbsDiff is the mean |fitness(draw 1) - fitness(draw 2)| over pairs;
	// for normal noise of standard deviation s it is 2s/sqrt(pi) = 1.13 s.
	MeanAbsDiff float64 `json:"mean_abs_diff"`
	// Std is the sample standard deviation (n - 1) of all 2 x pairs
	// fitnesses (0 with one pair of equal values).
	Std float64 `json:"std"`
}

// Noise evaluates one member on pairs independent draws of Cfg.Samples
// training prompts per task (as Cfg.Draw draws them) and writes
// Out/noise.json. The member is f when given, else the CMA-ES mean of the
// newest checkpoint in Cfg.Out, on that checkpoint's stage (the last one
// when the run is finished); with f the first stage is used. Nothing else in
// Cfg.Out changes but refs.json, which gains the references computed.
func (t *Trainer) Noise(ctx context.Context, pairs int, f *namm.File) (*NoiseReport, error) {
	if pairs < 1 {
		return nil, fmt.Errorf("evolve: noise pairs = %d, must be >= 1", pairs)
	}
	if err := t.Cfg.setDefaults(); err != nil {
		return nil, err
	}
	cfg := &t.Cfg
	t.id = cfg.identity()
	idJSON, _ := json.Marshal(t.id)
	t.runID = promptHash(string(idJSON))
	warn := func(s string) { t.say("warning: %s", s) }
	rep := &NoiseReport{Stage: 1, Samples: cfg.Samples, Draw: cfg.Draw}
	var p []float32
	if f != nil {
		p, t.ck.Norm = f.Params, f.Norm
		rep.Member = "file " + f.Path
		if f.Path == "" {
			rep.Member = "given NAMM"
		}
	} else {
		ck, err := loadCheckpoint(cfg.Out, t.id, warn)
		if err != nil {
			return nil, fmt.Errorf("evolve: %w", err)
		}
		if ck == nil {
			return nil, fmt.Errorf("evolve: noise: no checkpoint in %s to take the CMA-ES mean from: give a NAMM file, or run the evolution first", cfg.Out)
		}
		c := new(cmaes.CMAES)
		if err := c.UnmarshalBinary(ck.CMA); err != nil {
			return nil, fmt.Errorf("evolve: checkpoint %d: %w", ck.Seq, err)
		}
		p, t.ck.Norm = params(c.Mean()), ck.Norm
		rep.Stage = min(ck.Progress.Stage, len(cfg.Stages)-1) + 1
		rep.Member = fmt.Sprintf("CMA-ES mean of checkpoint %d (generation %d)", ck.Seq, ck.Progress.Iter)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("evolve: %w", err)
	}
	if err := t.checkStages(); err != nil {
		return nil, err
	}
	var err error
	if t.refs, err = OpenRefCache(filepath.Join(cfg.Out, RefsFile), cfg.Model, cfg.MaxNew, warn); err != nil {
		return nil, err
	}
	if cfg.Draw == DrawAnswerable {
		if err := t.findAnswerable(ctx); err != nil {
			return nil, err
		}
	}
	stage := cfg.Stages[rep.Stage-1]
	for _, sp := range stage.Train {
		rep.Tasks = append(rep.Tasks, sp.String())
	}

	// Every draw's prompts, then their references, then one batch of jobs.
	all := make([][]int, len(stage.Train))
	draws := make([][][]int, 2*pairs)
	for d := range draws {
		draws[d] = make([][]int, len(stage.Train))
		for ti := range stage.Train {
			draws[d][ti] = t.drawTrain(rep.Stage-1, cfg.Seed+NoiseSeedOffset, d, ti)
			all[ti] = append(all[ti], draws[d][ti]...)
		}
	}
	if err := t.ensureRefs(ctx, stage.Train, all, "noise"); err != nil {
		return nil, err
	}
	var jobs []Job
	for _, dr := range draws {
		for ti, idx := range dr {
			for _, i := range idx {
				j, err := t.jobFor(t.runID+"-noise", len(jobs), stage.Train[ti], i, p)
				if err != nil {
					return nil, err
				}
				jobs = append(jobs, j)
			}
		}
	}
	res, err := t.runBatch(ctx, jobs, fmt.Sprintf("noise: %d draws", len(draws)))
	if err != nil {
		return nil, err
	}
	per := len(jobs) / len(draws)
	fits := make([]float64, len(draws))
	for d := range draws {
		if fits[d], _, _, err = t.score(stage.Train, draws[d], res[d*per:(d+1)*per]); err != nil {
			return nil, err
		}
	}
	var absDiff float64
	for k := 0; k < pairs; k++ {
		a, b := fits[2*k], fits[2*k+1]
		rep.Pairs = append(rep.Pairs, [2]float64{a, b})
		rep.Draws = append(rep.Draws, [2][][]int{draws[2*k], draws[2*k+1]})
		absDiff += math.Abs(a - b)
	}
	rep.MeanAbsDiff = absDiff / float64(pairs)
	rep.Mean = mean(fits)
	var ss float64
	for _, x := range fits {
		ss += (x - rep.Mean) * (x - rep.Mean)
	}
	rep.Std = math.Sqrt(ss / float64(len(fits)-1))
	data, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return nil, errors.New("evolve: noise report: " + err.Error())
	}
	if err := atomicfile.WriteFile(filepath.Join(cfg.Out, NoiseFile), append(data, '\n')); err != nil {
		return nil, err
	}
	return rep, nil
}
