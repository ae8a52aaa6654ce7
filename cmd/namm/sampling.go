package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/sample"
)

// samplingFlags select how generate picks tokens; the default is greedy.
type samplingFlags struct {
	p    sample.Params
	seed int64
	stop []string
}

func (f *samplingFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.Float64Var(&f.p.Temperature, "temperature", 0, "sampling temperature in [0, 2]; 0 is greedy (the default)")
	fl.Float64Var(&f.p.TopP, "top-p", 1, "nucleus sampling: keep the most likely tokens up to this probability mass")
	fl.IntVar(&f.p.TopK, "top-k", 0, "keep only the K most likely tokens (0: all)")
	fl.Float64Var(&f.p.MinP, "min-p", 0, "drop tokens less likely than this times the most likely")
	fl.Int64Var(&f.seed, "seed", -1, "random seed for reproducible sampling (-1: a random seed)")
	fl.Float64Var(&f.p.FrequencyPenalty, "frequency-penalty", 0, "lower a token's logit by this per earlier occurrence in the output, in [-2, 2]")
	fl.Float64Var(&f.p.PresencePenalty, "presence-penalty", 0, "lower a token's logit by this once it occurred in the output, in [-2, 2]")
	fl.IntVar(&f.p.TopLogprobs, "top-logprobs", 0, "with --json, list this many most likely alternatives per token (0-20)")
	fl.StringArrayVar(&f.stop, "stop", nil, "stop before this text (repeatable)")
}

func (f *samplingFlags) params() (sample.Params, error) {
	p := f.p
	if f.seed >= 0 {
		s := uint64(f.seed)
		p.Seed = &s
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("--%s", err.(*sample.FieldError).Flag())
	}
	return p, nil
}
