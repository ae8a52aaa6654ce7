package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/inspect"
	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/runner"
	"github.com/namm-dev/namm/sample"
	"github.com/namm-dev/namm/textgen"
	"github.com/namm-dev/namm/tokenizer"
)

func generateCmd() *cobra.Command {
	var mf modelFlags
	var mem memoryFlags
	var sf samplingFlags
	var prompt, promptFile, traceFile string
	var maxNew int
	var asJSON, noBOS, truncate bool
	cmd := &cobra.Command{
		Use:   "generate --prompt TEXT",
		Short: "Generate a continuation of a prompt (greedy, or sampled), streaming it",
		Example: `  namm generate --model testdata/models/tiny-llama --prompt "Once upon a time" --max-new-tokens 20
  namm generate --model DIR --prompt-file long.txt --memory h2o --budget 1024 --json
  namm generate --model DIR --prompt-file long.txt --memory streaming --budget 256 --trace trace.json
  namm generate --prompt "Once upon a time" --temperature 0.8 --top-p 0.95 --seed 1 --stop "."`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case promptFile != "" && cmd.Flags().Changed("prompt"):
				return fmt.Errorf("give --prompt or --prompt-file, not both")
			case promptFile != "":
				data, err := os.ReadFile(promptFile)
				if err != nil {
					return err
				}
				if len(data) == 0 {
					return fmt.Errorf("--prompt-file %s is empty", promptFile)
				}
				prompt = string(data)
			case cmd.Flags().Changed("prompt") && prompt == "":
				return fmt.Errorf("--prompt is empty: give the text to continue")
			case prompt == "":
				return fmt.Errorf("give --prompt TEXT or --prompt-file FILE")
			}
			if maxNew <= 0 {
				return fmt.Errorf("--max-new-tokens must be > 0, got %d", maxNew)
			}
			sp, err := sf.params()
			if err != nil {
				return err
			}
			p, err := mem.policy()
			if err != nil {
				return err
			}
			e, tok, err := mf.load()
			if err != nil {
				return err
			}
			if err := checkLayerBudgets(e.Config.NumLayers, mem.mustBudget()); err != nil {
				return err
			}
			r := runner.New(e, tok, 1)
			ids := tok.Encode(prompt, !noBOS)
			positions := e.Config.MaxPositionEmbeddings
			if len(ids)+maxNew > positions {
				if !truncate {
					return fmt.Errorf("the prompt has %d tokens; with --max-new-tokens %d that is more than the model's %d positions (max_position_embeddings in its config.json), and namm does not extrapolate positions: "+
						"give --truncate to keep the prompt's first and last parts (LongBench's middle truncation), shorten the prompt or --max-new-tokens, or use a model whose config extends its context (rope_scaling)",
						len(ids), maxNew, positions)
				}
				if maxNew >= positions {
					return fmt.Errorf("--max-new-tokens %d leaves no room for a prompt in the model's %d positions", maxNew, positions)
				}
				original := len(ids)
				if noBOS {
					return fmt.Errorf("--truncate encodes the kept text again with the tokenizer's special tokens: it does not go with --no-bos")
				}
				if ids, _, err = r.PromptIDs(prompt, maxNew); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "note: prompt truncated from %d to %d tokens (its middle dropped) to fit the model's %d positions with %d new tokens\n",
					original, len(ids), positions, maxNew)
			}
			out := cmd.OutOrStdout()
			start := time.Now()
			var firstToken time.Duration
			req := textgen.Request{Prompt: ids, MaxTokens: maxNew, Sampling: sp, Policy: p, StopStrings: sf.stop}
			var rec *inspect.Recorder
			if traceFile != "" {
				rec = inspect.NewRecorder(inspect.NewHeader(modelID(mf.model), e, p.Name(), tok, ids), nil)
				req.OnStep = rec.Observe
			}
			res, err := textgen.Run(cmd.Context(), r, req, func(ev textgen.Event) error {
				if rec != nil {
					rec.AddGenerated(tok, ev.Token.ID)
				}
				if firstToken == 0 {
					firstToken = time.Since(start)
				}
				if !asJSON {
					fmt.Fprint(out, ev.Text)
				}
				return nil
			})
			if err != nil {
				return err
			}
			elapsed := time.Since(start)
			if rec != nil {
				data, err := json.Marshal(rec.Finish(res.Text, res.FinishReason))
				if err != nil {
					return err
				}
				if err := atomicfile.WriteFile(traceFile, append(data, '\n')); err != nil {
					return fmt.Errorf("--trace: %w", err)
				}
			}
			st := res.Stats
			if asJSON {
				n, ct := e.Compilations()
				obj := map[string]any{
					"prompt_tokens": len(ids), "generated_tokens": len(res.Tokens), "ids": res.Tokens, "text": res.Text,
					"finish_reason": res.FinishReason,
					"memory":        p.Name(), "kv_tokens_per_layer": res.CacheTokens, "peak_kv_tokens": st.PeakKVTokens,
					"mean_kv_tokens": st.MeanKVTokens(), "peak_kv_bytes": st.PeakBytes,
					"seconds": elapsed.Seconds(), "first_token_seconds": firstToken.Seconds(),
					"graphs_compiled": n, "compile_seconds": ct.Seconds(),
				}
				if sp.TopLogprobs > 0 {
					obj["logprobs"] = logprobsJSON(tok, res.Choices)
				}
				return json.NewEncoder(out).Encode(obj)
			}
			fmt.Fprintln(out)
			fmt.Fprintf(cmd.ErrOrStderr(), "[%d prompt + %d new tokens in %.2fs; memory %s; KV tokens per layer now %v]\n",
				len(ids), len(res.Tokens), elapsed.Seconds(), p.Name(), res.CacheTokens)
			return nil
		},
	}
	mf.register(cmd)
	mem.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&prompt, "prompt", "", "prompt text")
	cmd.Flags().StringVar(&promptFile, "prompt-file", "", "read the prompt from a file")
	cmd.Flags().IntVar(&maxNew, "max-new-tokens", 64, "maximum number of tokens to generate")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of streaming text")
	cmd.Flags().BoolVar(&truncate, "truncate", false, "drop the middle of a prompt longer than the model's positions (LongBench's truncation) instead of refusing it")
	cmd.Flags().StringVar(&traceFile, "trace", "", "write the memory policy's evictions per step and layer to this JSON file (format namm-trace/1, docs/serving.md; draw it with namm trace-plot)")
	cmd.Flags().BoolVar(&noBOS, "no-bos", false, "do not add the tokenizer's special tokens (BOS) to the prompt")
	return cmd
}

// logprobsJSON lists each generated token with its log probability and the
// most likely alternatives.
func logprobsJSON(tok *tokenizer.Tokenizer, choices []sample.Choice) []map[string]any {
	out := make([]map[string]any, len(choices))
	for i, c := range choices {
		top := make([]map[string]any, len(c.Top))
		for j, t := range c.Top {
			top[j] = map[string]any{"id": t.ID, "token": tok.Decode([]int{t.ID}, false), "logprob": t.Logprob}
		}
		out[i] = map[string]any{"id": c.ID, "token": tok.Decode([]int{c.ID}, false), "logprob": c.Logprob, "top_logprobs": top}
	}
	return out
}
