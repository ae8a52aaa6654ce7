package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/evolve"
	"github.com/namm-dev/namm/evolve/cmaes"
	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/task/gen"
)

func init() { extraCommands = append(extraCommands, evolveCmd, workerCmd) }

// defaultLocalWorkers is the default number of evaluation goroutines: the
// pure-Go backend already spreads one evaluation over the cores, so more than
// two concurrent ones only add memory; a GPU backend runs one.
func defaultLocalWorkers(backend string) int {
	if strings.HasPrefix(backend, "xla") {
		return 1
	}
	if runtime.NumCPU() >= 4 {
		return 2
	}
	return 1
}

func evolveCmd() *cobra.Command {
	var mf modelFlags
	var stages []string
	var cfg evolve.Config
	var cma, natsURL string
	var workers, poolSize, batch int
	var ackWait time.Duration
	var maxDeliver int
	var benchWorkers, quiet, svg bool
	var noise int
	var noiseNAMM string
	var initNAMM string
	cmd := &cobra.Command{
		Use:   "evolve --stage TASKS [--stage TASKS ...] --out DIR",
		Short: "Evolve a NAMM with CMA-ES over a curriculum of generated tasks",
		Long: `Evolve a NAMM with CMA-ES (namm-reference §5). Each --stage is a comma-separated
list of task generator specs, task[:len=L][:n=N][:seed=S][:key=value...] (tasks:
` + taskNameList() + `); stages run in order, each
continuing the CMA-ES state of the previous stage's best validated mean.
Fitness is the mean over tasks of score / full-cache score on the same prompts.
Every generation is checkpointed in --out; rerun the same command to resume.
The result is --out/best.namm, usable as --memory namm:PATH.

With --nats URL the evaluations go to 'namm worker' processes over NATS
JetStream; --nats embedded starts an in-process server on 127.0.0.1 and
--workers in-process workers (more can join at the printed address).`,
		Example: `  namm evolve --model testdata/models/tiny-llama --stage niah_single:len=600:n=8 \
      --out /tmp/run --generations 3 --population 4 --samples 2 --cma sep
  namm evolve --model DIR --stage passage_retrieval:len=4096 --stage passage_retrieval:len=4096,qa:len=4096 \
      --out runs/a --nats embedded --workers 2
  namm evolve --model DIR --stage niah_single:len=600:n=8 --bench-workers`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(stages) == 0 {
				return errors.New("give at least one --stage TASKS")
			}
			mf.gpuGiven = cmd.Flags().Changed("gpu")
			if err := mf.validate(); err != nil {
				return err
			}
			if cfg.Samples < 1 {
				return fmt.Errorf("--samples must be >= 1, got %d", cfg.Samples)
			}
			if cfg.Population < 2 {
				return fmt.Errorf("--population must be >= 2, got %d", cfg.Population)
			}
			if !(cfg.Sigma0 > 0) || math.IsInf(cfg.Sigma0, 0) {
				return fmt.Errorf("--sigma0 must be finite and > 0, got %g", cfg.Sigma0)
			}
			if cfg.EigenEvery < 0 {
				return fmt.Errorf("--eigen-every must be >= 0, got %d", cfg.EigenEvery)
			}
			if cfg.Draw != evolve.DrawAny && cfg.Draw != evolve.DrawAnswerable {
				return fmt.Errorf("--draw %q: want %s or %s", cfg.Draw, evolve.DrawAny, evolve.DrawAnswerable)
			}
			switch {
			case noise < 0:
				return fmt.Errorf("--noise must be >= 0, got %d", noise)
			case noiseNAMM != "" && noise == 0:
				return errors.New("--noise-namm needs --noise N")
			case noise > 0 && benchWorkers:
				return errors.New("--noise and --bench-workers are separate runs: give one")
			}
			if initNAMM != "" {
				var err error
				if cfg.Init, err = namm.Load(initNAMM); err != nil {
					return fmt.Errorf("--init: %w", err)
				}
			}
			var noiseFile *namm.File
			if noiseNAMM != "" {
				var err error
				if noiseFile, err = namm.Load(noiseNAMM); err != nil {
					return fmt.Errorf("--noise-namm: %w", err)
				}
			}
			local, err := localWorkers(workers, cmd.Flags().Changed("workers"), natsURL, mf.backend)
			if err != nil {
				return err
			}
			if poolSize == 0 {
				poolSize = 4 * cfg.Samples
			}
			if cfg.ValSamples == 0 {
				cfg.ValSamples = cfg.Samples
			}
			for i, s := range stages {
				st, err := evolve.ParseStage(s, poolSize, cfg.ValSamples)
				if err != nil {
					return fmt.Errorf("--stage %d: %w", i+1, err)
				}
				cfg.Stages = append(cfg.Stages, st)
			}
			switch cma {
			case "full", "sep":
				cfg.CMA = cmaes.Mode(cma)
			default:
				return fmt.Errorf("--cma %q: want full or sep", cma)
			}
			dir, err := resolveModel(mf.model)
			if err != nil {
				return err
			}
			id, err := mf.modelID()
			if err != nil {
				return err
			}
			cfg.Model, cfg.BaseModel = id.Hash, id.String()
			e, tok, err := mf.load()
			if err != nil {
				return err
			}
			if mf.gpuGiven {
				fmt.Fprintf(cmd.ErrOrStderr(), "evolve: on GPU %d (CUDA_VISIBLE_DEVICES=%d)\n", mf.gpu, mf.gpu)
			}
			ev := evolve.NewEvaluator(e, tok, cfg.Model)
			ev.Name = "coordinator"
			if err := setBatch(ev, batch); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stderr := cmd.ErrOrStderr()

			if benchWorkers {
				return runBenchWorkers(ctx, cmd.OutOrStdout(), stderr, ev, cfg, natsURL)
			}
			if cfg.Out == "" {
				return errors.New("give --out DIR")
			}
			var pool evolve.Pool
			if natsURL == "" {
				// Enough jobs at once to fill the runner's batches.
				pool = evolve.NewLocalPool(ev, max(local, batch))
			} else {
				url := natsURL
				if natsURL == "embedded" {
					srv, err := evolve.StartEmbeddedNATS()
					if err != nil {
						return err
					}
					defer srv.Close()
					url = srv.URL()
					join := "namm worker --nats " + url
					if mf.model != "" {
						join += " --model " + dir
					}
					fmt.Fprintf(stderr, "embedded NATS server at %s (join with: %s)\n", url, join)
				}
				abs, _ := filepath.Abs(cfg.Out)
				h := sha256.Sum256([]byte(abs))
				np, err := evolve.NewNATSPool(ctx, url, evolve.NATSOptions{AckWait: ackWait, MaxDeliver: maxDeliver, Queue: "q" + hex.EncodeToString(h[:6])})
				if err != nil {
					return err
				}
				pool = np
				wait, err := startLocalWorkers(ctx, url, ev, local, batch, stderr)
				if err != nil {
					np.Close()
					return err
				}
				defer wait()
			}
			defer pool.Close()
			tr := &evolve.Trainer{Cfg: cfg, Eval: ev, Pool: pool, Messages: stderr, SVG: svg}
			if !quiet {
				tr.Progress = stderr
			}
			if noise > 0 {
				rep, err := tr.Noise(ctx, noise, noiseFile)
				if err != nil {
					return err
				}
				printNoise(cmd.OutOrStdout(), rep, filepath.Join(cfg.Out, evolve.NoiseFile))
				return nil
			}
			err = tr.Run(ctx)
			if err != nil && ctx.Err() != nil {
				return fmt.Errorf("interrupted: %s holds the last finished generation's checkpoint; run the same command again to resume", cfg.Out)
			}
			return err
		},
	}
	mf.manyPrompts = true
	mf.register(cmd)
	mf.registerGPU(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&stages, "stage", nil, "comma-separated task specs of one curriculum stage (repeat for more stages)")
	f.StringVar(&cfg.Out, "out", "", "output directory: checkpoints, log, curves, best.namm")
	f.IntVar(&cfg.Generations, "generations", 100, "CMA-ES generations per stage")
	f.IntVar(&cfg.Population, "population", 32, "CMA-ES population size (lambda)")
	f.IntVar(&cfg.Samples, "samples", 64, "prompts per task drawn (without replacement) each generation")
	f.IntVar(&poolSize, "pool", 0, "training prompts per task when a spec has no n= (default 4 x --samples)")
	f.IntVar(&cfg.ValSamples, "val-samples", 0, "validation prompts per task (default --samples)")
	f.Float64Var(&cfg.Sigma0, "sigma0", cmaes.DefaultSigma0, "initial CMA-ES step size")
	f.Float64Var(&cfg.MemoryWeight, "memory-weight", 0, "add W x (1 - KV tokens / full cache's KV tokens) to the fitness, so the memory saved counts (0: the reference, score only)")
	f.StringVar(&cfg.Draw, "draw", evolve.DrawAny, "prompts a generation draws from each task's pool: any, or answerable (only those the full cache scores > 0 on; the whole pools' full-cache references are computed first, and a task with fewer than --samples such prompts is an error)")
	f.Int64Var(&cfg.Seed, "seed", 1337, "seed of CMA-ES and of the sample draws")
	f.StringVar(&cma, "cma", "sep", "covariance model: sep (diagonal: O(n) time and ~100 kB checkpoints; use it) or full (the reference's 4,172 x 4,172 matrix: checkpoints of 70-420 MB and an eigendecomposition of minutes every --eigen-every generations, on 2 cores; with few hundred generations it barely moves from the identity)")
	f.IntVar(&cfg.EigenEvery, "eigen-every", 0, "with --cma full, generations one eigendecomposition serves (0: Hansen's lazy interval, 25 at population 32; 1: every generation, as the reference and earlier versions; use it to resume their full-mode runs)")
	f.BoolVar(&quiet, "quiet", false, "no progress bars")
	f.BoolVar(&svg, "svg", false, "draw the curves (fitness, sigma, cache) as SVG files too")
	f.IntVar(&cfg.EvalEvery, "eval-every", 10, "validate the mean every N generations (and at 0 and at the end of a stage)")
	f.IntVar(&cfg.MaxNew, "max-new", 0, "cap on generated tokens per prompt (0: each task's own)")
	f.IntVar(&cfg.NormSamples, "norm-samples", 0, "prompts of the first task for the normalisation statistics (0: all, the reference)")
	f.IntVar(&workers, "workers", 0, "in-process evaluation workers (default 1-2 on CPU, 1 on GPU; with an external --nats, 0; --nats embedded --workers 0 leaves the work to 'namm worker' processes)")
	f.IntVar(&batch, "batch", 1, "jobs (population members x prompts) that share each forward pass, each with its own cache and NAMM parameters")
	f.StringVar(&natsURL, "nats", "", "NATS server URL for distributed evaluation, or 'embedded'")
	f.DurationVar(&ackWait, "ack-wait", 60*time.Second, "NATS: redeliver a job not acknowledged within this time (workers extend it while working)")
	f.IntVar(&maxDeliver, "max-deliver", 5, "NATS: fail the generation when a job was delivered this many times")
	f.IntVar(&noise, "noise", 0, "instead of evolving, measure the fitness noise: the CMA-ES mean of --out's newest checkpoint (or --noise-namm) on N pairs of independent draws of --samples prompts per task; prints each draw's fitness, the mean |difference| within pairs and the standard deviation, and writes --out/noise.json")
	f.StringVar(&initNAMM, "init", "", "start from this NAMM file instead of all zeros: the CMA-ES mean begins at its parameters, and its normalisation statistics are kept (e.g. defaultnamm/file/*.namm, evolved on another model)")
	f.StringVar(&noiseNAMM, "noise-namm", "", "with --noise, evaluate this NAMM file instead of the checkpoint's mean (on the first stage's tasks)")
	f.BoolVar(&benchWorkers, "bench-workers", false, "measure evaluations per second with 1, 2 and 4 workers over embedded NATS (first task of the first stage)")
	return cmd
}

// printNoise writes a fitness-noise report, one line per pair.
func printNoise(w io.Writer, rep *evolve.NoiseReport, path string) {
	fmt.Fprintf(w, "fitness noise of %s: stage %d (%s), %d prompts per task per draw, --draw %s\n",
		rep.Member, rep.Stage, strings.Join(rep.Tasks, ", "), rep.Samples, rep.Draw)
	for i, p := range rep.Pairs {
		fmt.Fprintf(w, "pair %d: %.6g %.6g  |difference| %.6g\n", i+1, p[0], p[1], math.Abs(p[0]-p[1]))
	}
	fmt.Fprintf(w, "mean %.6g  mean |difference| %.6g  standard deviation %.6g  (%s)\n", rep.Mean, rep.MeanAbsDiff, rep.Std, path)
}

// localWorkers is the number of in-process evaluation workers: --workers
// when given (0 only with --nats: remote workers do the work), else 1-2 on
// CPU and 1 on GPU, and none with an external NATS server.
func localWorkers(flag int, given bool, natsURL, backend string) (int, error) {
	switch {
	case given && (flag < 0 || flag == 0 && natsURL == ""):
		return 0, fmt.Errorf("--workers must be >= 1 without --nats (0 is for --nats, where 'namm worker' processes do the work), got %d", flag)
	case given:
		return flag, nil
	case natsURL != "" && natsURL != "embedded":
		return 0, nil
	}
	return defaultLocalWorkers(backend), nil
}

// taskNameList lists the generated tasks for the help text.
func taskNameList() string {
	var names []string
	for _, t := range gen.Tasks() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

// startLocalWorkers runs n NATS workers in this process, each with its own
// connection; wait stops them.
func startLocalWorkers(ctx context.Context, url string, ev *evolve.Evaluator, n, batch int, log io.Writer) (wait func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var conns []*nats.Conn
	wait = func() {
		cancel()
		for _, nc := range conns {
			nc.Close()
		}
		wg.Wait()
	}
	for i := 0; i < n; i++ {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("namm-evolve-worker-%d", i)), nats.MaxReconnects(-1))
		if err != nil {
			wait()
			return nil, fmt.Errorf("nats: connect %s: %w", url, err)
		}
		conns = append(conns, nc)
		// The workers share ev's runner: together about batch jobs at once.
		w := &evolve.Worker{Eval: ev, Concurrency: max(1, (batch+n-1)/n), Messages: func(s string) { fmt.Fprintf(log, "worker %d: %s\n", i, s) }}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx, nc); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, evolve.ErrWorkerConnClosed) {
				fmt.Fprintf(log, "worker %d: %v\n", i, err)
			}
		}()
	}
	return wait, nil
}

func runBenchWorkers(ctx context.Context, out, stderr io.Writer, ev *evolve.Evaluator, cfg evolve.Config, natsURL string) error {
	url := natsURL
	if url == "" || url == "embedded" {
		srv, err := evolve.StartEmbeddedNATS()
		if err != nil {
			return err
		}
		defer srv.Close()
		url = srv.URL()
	}
	spec := cfg.Stages[0].Train[0]
	samples := min(cfg.Samples, spec.N)
	jobs, err := evolve.BenchJobs(ev, spec, cfg.Population, samples, cfg.Sigma0, cfg.MaxNew, uint64(cfg.Seed))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "benchmark: %d jobs (%d candidates x %d prompts of %s) per worker count, NATS at %s\n", len(jobs), cfg.Population, samples, spec, url)
	res, err := evolve.BenchWorkers(ctx, ev, url, jobs, []int{1, 2, 4})
	for _, r := range res {
		fmt.Fprintf(out, "NATS, %d workers: %d evaluations in %.2fs = %.3f evaluations/s\n", r.Workers, r.Jobs, r.Seconds, r.EvalsPerSec)
	}
	if err != nil {
		return err
	}
	// The same jobs on the local pool, one goroutine: the cost of NATS.
	for i := range jobs {
		jobs[i].Batch = "bench-local"
	}
	start := time.Now()
	if _, err := evolve.NewLocalPool(ev, 1).Run(ctx, jobs, nil); err != nil {
		return err
	}
	d := time.Since(start).Seconds()
	fmt.Fprintf(out, "local pool, 1 goroutine: %d evaluations in %.2fs = %.3f evaluations/s\n", len(jobs), d, float64(len(jobs))/d)
	if b := ev.Runner.Batch; b > 1 {
		// The same jobs sharing passes: --batch jobs at once through the runner.
		for i := range jobs {
			jobs[i].Batch = "bench-local-batch"
		}
		start := time.Now()
		if _, err := evolve.NewLocalPool(ev, b).Run(ctx, jobs, nil); err != nil {
			return err
		}
		db := time.Since(start).Seconds()
		fmt.Fprintf(out, "local pool, batch %d: %d evaluations in %.2fs = %.3f evaluations/s (%.2fx one goroutine)\n", b, len(jobs), db, float64(len(jobs))/db, d/db)
	}
	return nil
}

// setBatch makes ev's runner run up to n sequences per pass, refused
// before anything starts when n prompts at the model's length limit, each
// with a NAMM's state per cached token, would not fit in memory.
func setBatch(ev *evolve.Evaluator, n int) error {
	if n < 1 {
		return fmt.Errorf("--batch must be >= 1, got %d", n)
	}
	if err := ev.Engine.CheckBatchMemory(n, ev.Engine.Config.MaxPositionEmbeddings, namm.StateWidth); err != nil {
		return fmt.Errorf("--batch %d: %w", n, err)
	}
	ev.Runner.Batch = n
	return nil
}
