package main

import (
	"encoding/json"
	"fmt"
	"github.com/namm-dev/namm/policy"
	"math/rand/v2"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/model"
)

// benchResult is one measured run.
type benchResult struct {
	Model          string  `json:"model"`
	Backend        string  `json:"backend"`
	DType          string  `json:"dtype"`
	Memory         string  `json:"memory"`
	Context        int     `json:"context"`
	DecodeTokens   int     `json:"decode_tokens"`
	PrefillSeconds float64 `json:"prefill_seconds"`
	PrefillTokS    float64 `json:"prefill_tokens_per_second"`
	DecodeMsTok    float64 `json:"decode_ms_per_token"`
	KVBytes        int64   `json:"kv_bytes"`
	KVTokens       []int   `json:"kv_tokens_per_layer"`
	Graphs         int     `json:"graphs_compiled"`
	CompileSeconds float64 `json:"first_call_seconds"` // compile + first execution of each graph
	ColdSeconds    float64 `json:"cold_run_seconds"`
	CPU            string  `json:"machine"`
	// With a policy other than the full cache: the full cache's times in the
	// same process, and the share of step time the policy costs,
	// 1 - t_full / t_policy (negative when evicting makes steps faster).
	FullPrefillSeconds float64 `json:"full_cache_prefill_seconds,omitempty"`
	FullDecodeMsTok    float64 `json:"full_cache_decode_ms_per_token,omitempty"`
	PrefillShare       float64 `json:"policy_share_of_prefill_time,omitempty"`
	DecodeShare        float64 `json:"policy_share_of_decode_time,omitempty"`
	// With --profile: the timed run's wall time in the model's passes and in
	// the memory policy's host step, prefill and decode (seconds).
	PassSeconds   *[2]float64 `json:"pass_seconds,omitempty"`
	PolicySeconds *[2]float64 `json:"policy_step_seconds,omitempty"`
	// ScoreSeconds: of the policy's steps, the time a NAMM spent scoring
	// (BAM over every layer's cache, all phases).
	ScoreSeconds *float64 `json:"namm_score_seconds,omitempty"`
}

func benchCmd() *cobra.Command {
	var mf modelFlags
	var mem memoryFlags
	var shape string
	var context, decode, batch, reps int
	var asJSON, overhead, profile bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure prefill and decode speed, KV memory and graph compilations",
		Long: `bench prefills --context random tokens, then decodes --decode tokens greedily,
twice: the first (cold) run compiles the graphs, the second is timed. Use --shape
for a model of a named shape with random weights (no files needed).`,
		Example: `  namm bench --shape llama15m --context 1024
  namm bench --shape llama3-8b --backend xla:/path/xla_cuda_plugin.so --context 8192 --json
  namm bench --batch 4 --context 1024 --decode 64`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if context <= 0 || decode < 0 {
				return fmt.Errorf("--context must be > 0 and --decode >= 0")
			}
			if err := mf.validate(); err != nil {
				return err
			}
			var e *engine.Engine
			name := shape
			if shape != "" {
				var err error
				if e, err = mf.loadShape(shape); err != nil {
					return err
				}
			} else {
				var err error
				if e, _, err = mf.load(); err != nil {
					return err
				}
				name = mf.model
				if name == "" {
					name = "model A (embedded)"
				}
			}
			if err := checkLayerBudgets(e.Config.NumLayers, mem.mustBudget()); err != nil {
				return err
			}
			e.SetProfile(profile)
			if overhead {
				for _, n := range []int{1, 20, 100} {
					d, err := e.ExecOverhead(n, 200)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "exec overhead: %d args: %.1f us/call\n", n, float64(d.Nanoseconds())/1000)
				}
			}
			if batch > 1 {
				r, err := runBatchBench(e, mem.policy, batch, context, decode, reps)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(r)
				}
				return printBatchBench(cmd.OutOrStdout(), name, r)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			ids := make([]int, context)
			for i := range ids {
				ids[i] = rng.IntN(e.Config.VocabSize)
			}
			run := func(full bool) (benchResult, error) {
				p, err := mem.policy()
				if full {
					p, err = policy.New("full", policy.Budget{})
				}
				if err != nil {
					return benchResult{}, err
				}
				s, err := e.NewSession(p)
				if err != nil {
					return benchResult{}, err
				}
				t0 := time.Now()
				logits, err := s.Prefill(ids)
				if err != nil {
					return benchResult{}, err
				}
				pre := time.Since(t0)
				t1 := time.Now()
				next := engine.Argmax(logits)
				for range decode {
					if logits, err = s.Decode(next); err != nil {
						return benchResult{}, err
					}
					next = engine.Argmax(logits)
				}
				dec := time.Since(t1)
				r := benchResult{Model: name, Backend: mf.backend, DType: e.Weights.DType.String(), Memory: p.Name(),
					Context: context, DecodeTokens: decode, PrefillSeconds: pre.Seconds(),
					PrefillTokS: float64(context) / pre.Seconds(), KVBytes: s.Stats().PeakBytes, KVTokens: s.CacheTokens(),
					CPU: machine()}
				if decode > 0 {
					r.DecodeMsTok = dec.Seconds() * 1000 / float64(decode)
				}
				if profile {
					st := s.Stats()
					r.PassSeconds = &[2]float64{st.PassTime[0].Seconds(), st.PassTime[1].Seconds()}
					r.PolicySeconds = &[2]float64{st.PolicyTime[0].Seconds(), st.PolicyTime[1].Seconds()}
					if sp, ok := p.(policy.ScoreTimer); ok {
						sec := sp.ScoreTime().Seconds()
						r.ScoreSeconds = &sec
					}
				}
				return r, nil
			}
			t0 := time.Now()
			if _, err := run(false); err != nil {
				return err
			}
			cold := time.Since(t0)
			r, err := run(false)
			if err != nil {
				return err
			}
			if r.Memory != "full" {
				// The policy's share of the step time: the same run with the full
				// cache, measured in this process right after.
				if _, err := run(true); err != nil { // warm its graphs
					return err
				}
				f, err := run(true)
				if err != nil {
					return err
				}
				r.FullPrefillSeconds, r.FullDecodeMsTok = f.PrefillSeconds, f.DecodeMsTok
				r.PrefillShare = 1 - f.PrefillSeconds/r.PrefillSeconds
				if r.DecodeMsTok > 0 {
					r.DecodeShare = 1 - f.DecodeMsTok/r.DecodeMsTok
				}
			}
			n, ct := e.Compilations()
			r.Graphs, r.CompileSeconds, r.ColdSeconds = n, ct.Seconds(), cold.Seconds()
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(r)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "model\t%s (%s, %s)\n", r.Model, r.Backend, r.DType)
			fmt.Fprintf(w, "memory\t%s\n", r.Memory)
			fmt.Fprintf(w, "prefill\t%d tokens in %.3f s = %.1f tokens/s\n", context, r.PrefillSeconds, r.PrefillTokS)
			fmt.Fprintf(w, "decode\t%.2f ms/token (%d tokens after the prompt)\n", r.DecodeMsTok, decode)
			fmt.Fprintf(w, "KV cache\t%.2f MiB peak, tokens per layer %v\n", float64(r.KVBytes)/(1<<20), r.KVTokens)
			if r.Memory != "full" {
				fmt.Fprintf(w, "vs full cache\tprefill %.3f s, decode %.2f ms/token: %s costs %.1f%% of prefill time and %.1f%% of decode time\n",
					r.FullPrefillSeconds, r.FullDecodeMsTok, r.Memory, 100*r.PrefillShare, 100*r.DecodeShare)
			}
			if r.PassSeconds != nil {
				fmt.Fprintf(w, "profile\tprefill: passes %.3f s, policy steps %.3f s; decode: passes %.3f s, policy steps %.3f s\n",
					r.PassSeconds[0], r.PolicySeconds[0], r.PassSeconds[1], r.PolicySeconds[1])
				if r.ScoreSeconds != nil {
					fmt.Fprintf(w, "	of the policy steps, scoring (BAM) %.3f s\n", *r.ScoreSeconds)
				}
			}
			fmt.Fprintf(w, "graphs\t%d compiled; first calls took %.2f s; cold run %.2f s\n", r.Graphs, r.CompileSeconds, r.ColdSeconds)
			fmt.Fprintf(w, "machine\t%s\n", r.CPU)
			return w.Flush()
		},
	}
	mf.register(cmd)
	mem.register(cmd)
	cmd.Flags().StringVar(&shape, "shape", "", "benchmark a named shape with random weights instead of --model: "+fmt.Sprint(model.ShapeNames()))
	cmd.Flags().IntVar(&context, "context", 1024, "prompt length in tokens")
	cmd.Flags().IntVar(&decode, "decode", 32, "tokens to decode after the prompt")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&batch, "batch", 1, "run this many sequences per pass (random prompts of --context tokens each) and compare with batch 1 in the same process: tokens/s of all sequences, ms/token per sequence")
	cmd.Flags().IntVar(&reps, "reps", 2, "with --batch: timed rounds of batch 1 and batch N, alternating after a warm-up round; the best of each is reported")
	cmd.Flags().BoolVar(&profile, "profile", false, "wait for each pass to finish and report the time in the model's passes and in the memory policy's steps separately")
	cmd.Flags().BoolVar(&overhead, "exec-overhead", false, "also measure the fixed cost of one graph execution")
	return cmd
}

func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())
}
