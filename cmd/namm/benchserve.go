package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/defaultmodel"
	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/serve"
	"github.com/namm-dev/namm/tokenizer"
)

func init() { extraCommands = append(extraCommands, benchServeCmd) }

// loadResult is one load level's outcome.
type loadResult struct {
	Clients      int     `json:"clients"`
	Requests     int     `json:"requests"`
	Failures     int     `json:"failures"`
	Tokens       int     `json:"completion_tokens"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_second"`
	P50          float64 `json:"p50_seconds"`
	P99          float64 `json:"p99_seconds"`
	FirstError   string  `json:"first_error,omitempty"`
}

func benchServeCmd() *cobra.Command {
	var mf modelFlags
	var mem memoryFlags
	var url, apiKey, shape, tokDir string
	var sched schedFlags
	var clients, maxTokens, queue int
	var dur time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench-serve",
		Short: "Load-test the server: one client, then many, for a duration each (failures, latency, tokens/s)",
		Long: `bench-serve sends completion requests (greedy, max_tokens each, prompts that
differ per request) from one client, then from --clients clients at once,
each for --duration, and reports failed requests, p50/p99 latency and the
aggregate completion tokens/s, with its ratio to one client's. Without --url
it starts the server in the same process (the model and memory flags,
--scheduler, --slots). --shape serves a model of a named shape with random
weights (its text is noise; the speed is the shape's) and the tokenizer of
--tokenizer, so that a large shape is measured without its files.`,
		Example: `  namm bench-serve --clients 16 --duration 60s
  namm bench-serve --clients 16 --duration 30s --scheduler slots --slots 1
  namm bench-serve --shape llama3-8b --tokenizer DIR --backend xla:/path/xla_cuda_plugin.so --clients 32
  namm bench-serve --url http://127.0.0.1:8080 --api-key KEY --clients 32 --duration 60s --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if clients < 1 || maxTokens < 1 || dur <= 0 {
				return fmt.Errorf("--clients, --max-tokens and --duration must be > 0")
			}
			if url == "" {
				b, err := mem.budgetSpec()
				if err != nil {
					return err
				}
				e, tok, id, err := loadServed(&mf, shape, tokDir)
				if err != nil {
					return err
				}
				if err := sched.resolve(mf.backend); err != nil {
					return err
				}
				srv, err := serve.New(serve.Config{ModelID: id, Engine: e, Tokenizer: tok,
					Memory: mem.memory, Budget: b, Slots: sched.slots, MaxQueue: max(queue, clients), Independent: sched.independent()})
				if err != nil {
					return err
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				hs := &http.Server{Handler: srv.Handler()}
				go hs.Serve(ln)
				defer hs.Close()
				url = "http://" + ln.Addr().String()
			}
			ctx := cmd.Context()
			one := runLoad(ctx, url, apiKey, 1, dur, maxTokens)
			many := runLoad(ctx, url, apiKey, clients, dur, maxTokens)
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"url": url, "max_tokens": maxTokens, "slots": sched.slots, "scheduler": sched.kind,
					"memory": mem.memory, "one": one, "many": many, "speedup": many.TokensPerSec / one.TokensPerSec})
			}
			out := cmd.OutOrStdout()
			if sched.kind != "" {
				fmt.Fprintf(out, "in-process server: scheduler %s, %d slots, memory %s\n", sched.kind, sched.slots, mem.memory)
			}
			fmt.Fprintf(out, "%-8s %9s %9s %8s %10s %10s %10s\n", "clients", "requests", "failures", "tokens", "tokens/s", "p50 s", "p99 s")
			for _, r := range []loadResult{one, many} {
				fmt.Fprintf(out, "%-8d %9d %9d %8d %10.1f %10.3f %10.3f\n", r.Clients, r.Requests, r.Failures, r.Tokens, r.TokensPerSec, r.P50, r.P99)
				if r.FirstError != "" {
					fmt.Fprintf(out, "  first failure: %s\n", r.FirstError)
				}
			}
			fmt.Fprintf(out, "aggregate tokens/s, %d clients / 1 client: %.2fx\n", clients, many.TokensPerSec/one.TokensPerSec)
			return nil
		},
	}
	mf.register(cmd)
	mem.register(cmd)
	cmd.Flags().StringVar(&url, "url", "", "server to load (default: start one in this process)")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "API key for --url")
	cmd.Flags().StringVar(&shape, "shape", "", "serve a named shape with random weights instead of --model: "+fmt.Sprint(model.ShapeNames()))
	cmd.Flags().StringVar(&tokDir, "tokenizer", "", "with --shape, the tokenizer directory (tokenizer.json; default: the embedded model's)")
	cmd.Flags().IntVar(&clients, "clients", 16, "concurrent clients of the second run")
	cmd.Flags().DurationVar(&dur, "duration", 60*time.Second, "how long each run sends requests")
	cmd.Flags().IntVar(&maxTokens, "max-tokens", 64, "tokens generated per request")
	sched.register(cmd)
	cmd.Flags().IntVar(&queue, "queue", 0, "queue of the in-process server (default: --clients)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// loadServed opens what the in-process server serves: --model and its
// tokenizer, or a --shape with random weights and the tokenizer of tokDir
// (default: the embedded model's). Ids the tokenizer does not know decode to
// nothing, so a shape's larger vocabulary is harmless.
func loadServed(mf *modelFlags, shape, tokDir string) (*engine.Engine, *tokenizer.Tokenizer, string, error) {
	if shape == "" {
		if tokDir != "" {
			return nil, nil, "", fmt.Errorf("--tokenizer goes with --shape (a --model brings its own)")
		}
		e, tok, err := mf.load()
		return e, tok, modelID(mf.model), err
	}
	if mf.model != "" {
		return nil, nil, "", fmt.Errorf("--shape and --model exclude each other")
	}
	if tokDir == "" {
		dir, err := defaultmodel.Dir()
		if err != nil {
			return nil, nil, "", fmt.Errorf("--shape needs --tokenizer DIR (no embedded model: %w)", err)
		}
		tokDir = dir
	}
	tok, err := tokenizer.LoadDir(tokDir)
	if err != nil {
		return nil, nil, "", fmt.Errorf("--tokenizer: %w", err)
	}
	e, err := mf.loadShape(shape)
	if err != nil {
		return nil, nil, "", err
	}
	if tok.VocabSize() > e.Config.VocabSize {
		return nil, nil, "", fmt.Errorf("--tokenizer %s: %d ids, more than the %d of shape %s", tokDir, tok.VocabSize(), e.Config.VocabSize, shape)
	}
	return e, tok, "shape:" + shape, nil
}

// benchPrompts are varied so that requests do not all decode the same text.
var benchPrompts = []string{
	"It was a bright cold day in April, and the clocks were striking thirteen.",
	"The old man walked down to the harbour where the boats were waiting for the tide.",
	"In the morning the village woke to find that the river had frozen overnight.",
	"She opened the letter slowly, knowing already what it would say.",
	"The train was late again, and the platform filled with people and their umbrellas.",
	"Far to the north, beyond the mountains, there lived a family of clockmakers.",
}

// runLoad runs clients clients for dur, each sending one request after
// another; requests in flight at the end are waited for and counted.
func runLoad(ctx context.Context, url, apiKey string, clients int, dur time.Duration, maxTokens int) loadResult {
	res := loadResult{Clients: clients}
	var mu sync.Mutex
	var lat []float64
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				prompt := fmt.Sprintf("%s (%d.%d)", benchPrompts[(c+i)%len(benchPrompts)], c, i)
				body, _ := json.Marshal(map[string]any{"prompt": prompt, "max_tokens": maxTokens, "temperature": 0})
				t0 := time.Now()
				tokens, err := postCompletion(ctx, url, apiKey, body)
				d := time.Since(t0).Seconds()
				mu.Lock()
				res.Requests++
				if err != nil {
					res.Failures++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				} else {
					res.Tokens += tokens
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.TokensPerSec = float64(res.Tokens) / res.Seconds
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return res
}

// percentile is the nearest-rank percentile of xs (0 when empty).
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func postCompletion(ctx context.Context, url, apiKey string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	var out struct {
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return 0, err
	}
	return out.Usage.CompletionTokens, nil
}
