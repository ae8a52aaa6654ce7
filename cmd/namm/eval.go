package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/eval"
	"github.com/namm-dev/namm/internal/progress"
	"github.com/namm-dev/namm/policy"
)

func init() { extraCommands = append(extraCommands, evalCmd) }

func evalCmd() *cobra.Command {
	var mf modelFlags
	var mem memoryFlags
	var (
		tasks, budgets, outDir          string
		samples, maxLength, jobs, batch int
		seed                            int64
		asJSON, noRef, skipBad          bool
		noPlots, svg, quiet             bool
	)
	cmd := &cobra.Command{
		Use:   "eval --tasks SPEC[,SPEC] --memory POLICY[,POLICY] [--budget N | --ratio R | --budgets N1,N2,...]",
		Short: "Score memory policies on long-context tasks against the full cache",
		Long: `eval runs every task's samples with every memory policy (each budgeted policy at
every budget), greedy decoding, and scores the predictions with the task's
metric. The full cache always runs too, as the reference of the normalised
score (score / full-cache score on the same samples), unless --no-reference.

A task is ` + eval.SpecHelp() + `.

--memory takes several policies separated by commas; a policy's own options
follow it ("h2o:recent=8,streaming" is h2o with recent=8, then streaming).

Prompts longer than --max-length minus the task's new tokens lose their middle
(LongBench's truncation). With --out DIR, each finished sample is appended to
DIR/journal.jsonl, so re-running the same command resumes where it stopped
(from any directory, as long as the model's files are the same: the model is
identified by a hash of its config, tokenizer and weights). At the end come
DIR/results.json (with the model, dtype, backend, policies with their options
and namm's version), the same tables as DIR/summary.csv and DIR/samples.csv,
and the plots DIR/score_vs_cache.png and DIR/cache_per_layer.png (--svg: also
as SVG).`,
		Example: `  namm eval --model testdata/models/tiny-llama --tasks niah_single:len=512:n=2 --memory full,h2o,streaming --budget 256 --out /tmp/ev
  namm eval --model DIR --tasks core --memory h2o,snapkv,namm:my.namm --budgets 256,512,1024 --samples 10 --out runs/core
  namm eval --model DIR --tasks longbench:data/hotpotqa.jsonl,jsonl:my.jsonl:template=prompt.txt:metric=rouge --memory tova --ratio 0.25`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tasks == "" {
				return fmt.Errorf("give --tasks: %s", eval.SpecHelp())
			}
			if samples < 0 || maxLength < 0 || jobs < 0 || batch < 1 {
				return fmt.Errorf("--samples, --max-length and --workers must be >= 0, --batch >= 1")
			}
			budgetList, err := evalBudgets(&mem, budgets)
			if err != nil {
				return err
			}
			matrix, err := eval.BuildMatrix(eval.SplitPolicies(mem.memory), budgetList, noRef)
			if err != nil {
				return err
			}
			e, tok, err := mf.load()
			if err != nil {
				return err
			}
			if err := checkLayerBudgets(e.Config.NumLayers, budgetList...); err != nil {
				return err
			}
			if err := eval.CheckMaxLength(maxLength, e.Config.MaxPositionEmbeddings); err != nil {
				return fmt.Errorf("--max-length: %w", err)
			}
			stderr := cmd.ErrOrStderr()
			loaded, err := eval.LoadTasks(strings.Split(tasks, ","), tok, eval.LoadOptions{
				Samples: samples, Seed: seed, HasSeed: cmd.Flags().Changed("seed"), SkipBad: skipBad,
				Warn: func(msg string) { fmt.Fprintln(stderr, "warning:", msg) },
			})
			if err != nil {
				return err
			}
			run, err := mf.provenance(e)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			scorer := &eval.Scorer{Engine: e, Tokenizer: tok, MaxLength: maxLength, Workers: jobs, Batch: batch}
			// Refused before it starts: a batch of prompts at the truncation
			// limit that would not fit in memory.
			if err := e.CheckBatchMemory(batch, scorer.Runner().MaxLen(), 0); err != nil {
				return fmt.Errorf("--batch %d: %w", batch, err)
			}
			cfg := eval.Config{
				Scorer:   scorer,
				Tasks:    loaded,
				Variants: matrix.Variants,
				OutDir:   outDir,
				Run:      run,
				NoPlots:  noPlots,
				SVG:      svg,
				Notes:    matrix.Notes,
			}
			reporter := &progressReporter{w: stderr}
			if !quiet {
				cfg.Progress = reporter
			}
			rep, err := eval.Run(ctx, cfg)
			if err != nil {
				reporter.stop()
				if ctx.Err() != nil {
					err = errors.New("interrupted")
				}
				if outDir != "" && rep != nil && rep.Ran+rep.Resumed > 0 {
					fmt.Fprintf(stderr, "%d samples saved in %s; run the same command again to resume\n", rep.Ran+rep.Resumed, filepath.Join(outDir, eval.JournalFile))
				}
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep.Results)
			}
			if err := eval.WriteTable(out, rep.Summary, matrix.Notes); err != nil {
				return err
			}
			if rep.Resumed > 0 {
				fmt.Fprintf(out, "%d samples run now, %d taken from %s\n", rep.Ran, rep.Resumed, filepath.Join(outDir, eval.JournalFile))
			}
			for _, f := range rep.Files {
				fmt.Fprintln(out, "wrote", f)
			}
			return nil
		},
	}
	mf.manyPrompts = true
	mf.register(cmd)
	mem.register(cmd)
	f := cmd.Flags()
	f.StringVar(&tasks, "tasks", "", "comma-separated tasks: suites, generator specs or files (see above)")
	f.StringVar(&budgets, "budgets", "", "comma-separated budget sweep: token counts (256) and ratios (0.25)")
	f.IntVar(&samples, "samples", 0, "samples per task (first K; also n of generator specs without n=); 0: all")
	f.Int64Var(&seed, "seed", 1, "seed of generator specs without seed=")
	f.IntVar(&maxLength, "max-length", 0, "context limit for middle truncation, prompt + new tokens; 0: the model's max_position_embeddings")
	f.StringVar(&outDir, "out", "", "directory for journal.jsonl (resume), results.json and plots")
	f.BoolVar(&asJSON, "json", false, "print results.json's content instead of the table")
	f.BoolVar(&noRef, "no-reference", false, "do not run the full cache (no normalised scores)")
	f.BoolVar(&skipBad, "skip-bad", false, "skip malformed lines of task files (with a warning) instead of stopping")
	f.BoolVar(&noPlots, "no-plots", false, "do not draw the plots")
	f.BoolVar(&svg, "svg", false, "draw the plots as SVG files too")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	f.IntVar(&jobs, "workers", 1, "samples run at once (at least --batch)")
	f.IntVar(&batch, "batch", 1, "samples that share each forward pass (batched inference: each keeps its own cache and policy; on a CPU the weights are read once for all)")
	return cmd
}

// evalBudgets merges --budgets with the shared --budget/--ratio/--layer-budgets flags.
func evalBudgets(mem *memoryFlags, list string) ([]policy.Budget, error) {
	single, err := mem.budgetSpec()
	if err != nil {
		return nil, err
	}
	if list == "" {
		if single.IsZero() {
			return nil, nil
		}
		return []policy.Budget{single}, nil
	}
	if !single.IsZero() {
		return nil, fmt.Errorf("give --budgets or one of --budget, --ratio, --layer-budgets, not both")
	}
	return eval.ParseBudgets(list)
}

// progressReporter draws a progress bar with an ETA on stderr when it is a
// terminal.
type progressReporter struct {
	w   io.Writer
	bar *progress.Bar
}

func (p *progressReporter) Start(total, resumed int) {
	if resumed > 0 {
		fmt.Fprintf(p.w, "resuming: %d samples already done, %d to run\n", resumed, total)
	}
	p.bar = progress.New(p.w, total, "eval")
}

func (p *progressReporter) Done(r eval.SampleResult) {
	label := r.Policy
	if r.Budget != "" {
		label += "@" + r.Budget
	}
	task := r.Task
	if len(task) > 24 {
		task = task[:24]
	}
	p.bar.Describe(fmt.Sprintf("%-24s %-14s", task, label))
	p.bar.Add(1)
}

// stop ends an unfinished bar's line before an error message.
func (p *progressReporter) stop() { p.bar.Break() }
