package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/internal/progress"
	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/task/gen"
)

func init() { extraCommands = append(extraCommands, nammFileCmd) }

func nammFileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "namm-file",
		Short: "Create, import and inspect NAMM files",
		Long: `A NAMM file (safetensors) holds the scorer's 4,172 parameters, the frozen
normalisation of the spectrogram features (17 means and variances) and metadata.`,
	}
	cmd.AddCommand(nammInitCmd(), nammImportCmd(), nammShowCmd())
	return cmd
}

func nammInitCmd() *cobra.Command {
	var mf modelFlags
	var tasks, out, params string
	var zero, quiet bool
	cmd := &cobra.Command{
		Use:   "init --tasks SPEC --out FILE",
		Short: "Compute the feature normalisation the reference way and write an all-zero NAMM (or another's parameters)",
		Long: `init runs the model over every prompt of the given task(s) with all-zero NAMM
parameters (nothing is evicted) and pools the mean and variance of the
unnormalised spectrogram features over layers, heads, tokens and steps, as the
reference does at the first evaluation of evolution stage 1. The result is the
starting point of evolution. Prompts must be longer than 512 tokens.

With --params FILE the parameters (and the record of where they were evolved)
come from FILE instead of zeros: a NAMM evolved on another model, given this
model's feature statistics (evaluate it against the original; see
docs/results.md).`,
		Example: `  namm namm-file init --model DIR --tasks niah_single:len=2048:n=8 --out zero.namm
  namm namm-file init --model DIR --tasks facts:len=4096:n=8:split=train --params defaultnamm/file/default.namm --out recal.namm`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if zero && params != "" {
				return fmt.Errorf("--zero writes all-zero parameters: it takes no --params")
			}
			if zero && out != "" {
				// All-zero parameters evict nothing whatever the normalisation:
				// a NAMM that only measures its own overhead.
				f := &namm.File{Params: make([]float32, namm.NumParams)}
				for i := range f.Norm.Var {
					f.Norm.Var[i] = 1
				}
				if err := namm.Save(out, f); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (all-zero parameters, identity normalisation)\n", out)
				return nil
			}
			if tasks == "" || out == "" {
				return fmt.Errorf("give --tasks and --out")
			}
			var from *namm.File
			if params != "" {
				var err error
				if from, err = namm.Load(params); err != nil {
					return fmt.Errorf("--params: %w", err)
				}
			}
			e, tok, err := mf.load()
			if err != nil {
				return err
			}
			var prompts [][]int
			for _, s := range strings.Split(tasks, ",") {
				spec, err := gen.ParseSpec(s)
				if err != nil {
					return err
				}
				samples, err := gen.Generate(spec, tok)
				if err != nil {
					return err
				}
				for _, smp := range samples {
					prompts = append(prompts, tok.Encode(smp.Prompt, true))
				}
			}
			var bar *progress.Bar
			if !quiet {
				bar = progress.New(cmd.ErrOrStderr(), len(prompts), "normalisation")
			}
			norm, err := namm.ComputeNormalization(func(p policy.Policy) error {
				for _, ids := range prompts {
					s, err := newSession(e, tok, p)
					if err != nil {
						return err
					}
					if _, err := s.Prefill(ids); err != nil {
						return err
					}
					bar.Add(1)
				}
				return nil
			})
			if err != nil {
				bar.Break()
				return err
			}
			bar.Finish()
			id, err := mf.modelID()
			if err != nil {
				return err
			}
			f := &namm.File{Params: make([]float32, namm.NumParams), Norm: norm, BaseModel: id.String()}
			what := "all-zero parameters"
			if from != nil {
				f.Params, f.BaseModel, f.Generation, f.Fitness = from.Params, from.BaseModel, from.Generation, from.Fitness
				what = "the parameters of " + params
			}
			if err := namm.Save(out, f); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s, normalisation from %d prompts)\n", out, what, len(prompts))
			return nil
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVar(&tasks, "tasks", "", "comma-separated task generator specs (the first training task)")
	cmd.Flags().StringVar(&out, "out", "", "NAMM file to write")
	cmd.Flags().StringVar(&params, "params", "", "take the parameters from this NAMM file instead of zeros (recompute only the normalisation, on this model)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	cmd.Flags().BoolVar(&zero, "zero", false, "write all-zero parameters with an identity normalisation, without running a model (for overhead benchmarks)")
	return cmd
}

func nammImportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "import CHECKPOINT --out FILE",
		Short: "Import a reference (SakanaAI/evo-memory) checkpoint: its CMA-ES mean and normalisation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("give --out")
			}
			f, err := namm.ImportReference(args[0])
			if err != nil {
				return err
			}
			if err := namm.Save(out, f); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "NAMM file to write")
	return cmd
}

func nammShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show FILE",
		Short: "Print a NAMM file's metadata and parameter statistics",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := namm.Load(args[0])
			if err != nil {
				return err
			}
			var sum, sq, maxAbs float64
			for _, v := range f.Params {
				x := float64(v)
				sum += x
				sq += x * x
				maxAbs = max(maxAbs, math.Abs(x))
			}
			n := float64(len(f.Params))
			base := f.BaseModel
			if base == "" || base == "." { // files written before the model was recorded
				base = "(not recorded)"
			}
			info := map[string]any{"file": args[0], "base_model": base, "generation": f.Generation, "fitness": f.Fitness,
				"params": len(f.Params), "param_mean": sum / n, "param_rms": math.Sqrt(sq / n), "param_max_abs": maxAbs,
				"norm_mean": f.Norm.Mean, "norm_var": f.Norm.Var}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(info)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, k := range []string{"file", "base_model", "generation", "fitness", "params", "param_mean", "param_rms", "param_max_abs", "norm_mean", "norm_var"} {
				fmt.Fprintf(w, "%s\t%v\n", k, info[k])
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
