// Package eval runs long-context tasks through the engine with memory
// policies and scores the answers: the core of `namm eval`, and the fitness
// function of evolution.
//
// The pieces, from the inside out:
//   - ScoreSamples / Scorer: run samples with one policy, greedy decoding,
//     LongBench-style middle truncation, and score each prediction with its
//     metric (package task/metric).
//   - LoadTasks: turn task specs (built-in suites, generator specs, benchmark
//     files) into Tasks of Samples.
//   - Matrix: the policy x budget variants to run, the full cache included as
//     the reference that normalised scores divide by.
//   - Run: the whole evaluation with a resumable journal, a summary table
//     (Summarize), results.json and PNG plots.
package eval

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/runner"
	"github.com/namm-dev/namm/task/metric"
	"github.com/namm-dev/namm/tokenizer"
)

// Sample is one task instance ready to run.
type Sample struct {
	ID           string   // unique within its task
	Task         string   // the task it belongs to (a generator spec or a dataset name); rows of the table
	Dataset      string   // benchmark dataset name for LongBench post-processing ("" for none)
	Prompt       string   // the whole prompt, template applied
	Answers      []string // reference answers, at least one
	AllClasses   []string // label set of classification tasks, else nil
	Metric       string   // a name of package task/metric
	MaxNewTokens int      // generation budget
}

// Validate checks what ScoreSamples needs: answers, a known metric and a
// generation budget.
func (s Sample) Validate() error {
	if len(s.Answers) == 0 {
		return fmt.Errorf("task %s sample %s: empty answer list (a sample without a reference cannot be scored)", s.Task, s.ID)
	}
	if _, err := metric.Lookup(s.Metric); err != nil {
		return fmt.Errorf("task %s sample %s: %w", s.Task, s.ID, err)
	}
	if s.MaxNewTokens <= 0 {
		return fmt.Errorf("task %s sample %s: max new tokens must be > 0, got %d", s.Task, s.ID, s.MaxNewTokens)
	}
	return nil
}

// SampleResult is the outcome of one sample with one policy.
type SampleResult struct {
	ID     string `json:"id"`
	Task   string `json:"task"`
	Policy string `json:"policy"` // the policy spec as given, e.g. "h2o" or "streaming:sinks=8"
	Budget string `json:"budget"` // BudgetLabel of the budget, "" for policies without one

	Prediction string   `json:"prediction"` // decoded generation, after LongBench post-processing
	Answers    []string `json:"answers"`
	Metric     string   `json:"metric"`
	Score      float64  `json:"score"` // in [0, 1]

	PromptTokens    int  `json:"prompt_tokens"` // tokens fed to the model (after truncation)
	OriginalTokens  int  `json:"original_tokens"`
	Truncated       bool `json:"truncated,omitempty"`
	GeneratedTokens int  `json:"generated_tokens"`

	// MeanPerLayer is, per layer, the mean over forward passes of the tokens
	// held (max over KV heads); FinalPerLayer is what each layer held at the end.
	MeanPerLayer  []float64 `json:"cache_mean_per_layer"`
	FinalPerLayer []int     `json:"cache_final_per_layer"`
	MeanKVTokens  float64   `json:"mean_kv_tokens"` // mean over passes of the mean tokens per layer
	PeakKVTokens  int       `json:"peak_kv_tokens"` // max over time of the tokens held, summed over layers
	PeakKVBytes   int64     `json:"peak_kv_bytes"`
	Seconds       float64   `json:"seconds"`
}

// Key identifies a result in the journal: task, sample, policy and budget.
func (r SampleResult) Key() string {
	return strings.Join([]string{r.Task, r.ID, r.Policy, r.Budget}, "\x00")
}

// Scorer runs samples on an engine, through a runner.Runner. Its fields are
// read-only after the first call; it is safe for concurrent use (each
// sample gets its own session).
type Scorer struct {
	Engine    *engine.Engine
	Tokenizer *tokenizer.Tokenizer
	// MaxLength is the context limit of truncation: prompts longer than
	// MaxLength - MaxNewTokens lose their middle. 0 means the model's
	// max_position_embeddings.
	MaxLength int
	// Workers is how many samples ScoreAll runs at once (0 means 1); at
	// least Batch.
	Workers int
	// Batch is how many samples share a pass (runner.Runner.Batch; 0 means 1).
	Batch int

	once sync.Once
	run  *runner.Runner
}

// Runner is the runner the scorer generates with.
func (s *Scorer) Runner() *runner.Runner {
	s.once.Do(func() {
		s.run = runner.New(s.Engine, s.Tokenizer, s.Batch)
		s.run.MaxLength = s.MaxLength
	})
	return s.run
}

// ScoreSamples runs every sample with a fresh policy from newPolicy and
// returns the results in the order of samples. It is safe to call from
// several goroutines at once.
func ScoreSamples(e *engine.Engine, tok *tokenizer.Tokenizer, samples []Sample, newPolicy func() (policy.Policy, error)) ([]SampleResult, error) {
	s := &Scorer{Engine: e, Tokenizer: tok}
	return s.ScoreAll(context.Background(), samples, newPolicy, nil)
}

// ScoreAll runs samples with up to Workers sessions at once; onDone, if set,
// is called (from one goroutine at a time) after each sample. The first error
// stops the run; results of the samples not run are zero.
func (s *Scorer) ScoreAll(ctx context.Context, samples []Sample, newPolicy func() (policy.Policy, error), onDone func(i int, r SampleResult)) ([]SampleResult, error) {
	out := make([]SampleResult, len(samples))
	workers := max(s.Workers, s.Batch, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan int)
	)
	for range min(workers, len(samples)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p, err := newPolicy()
				var r SampleResult
				if err == nil {
					r, err = s.Score(ctx, samples[i], p)
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
						cancel()
					}
				} else {
					out[i] = r
					if onDone != nil {
						onDone(i, r)
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range samples {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return out, firstErr
	}
	return out, context.Cause(ctx)
}

// CheckMaxLength refuses a truncation limit beyond the model's positions:
// prompts up to that length would run at positions the model never saw.
func CheckMaxLength(maxLength, positions int) error {
	if maxLength > positions {
		return fmt.Errorf("max length %d is more than the model's %d positions (max_position_embeddings in its config.json), and namm does not extrapolate positions: "+
			"use %d or less (longer prompts lose their middle), or a model whose config extends its context (rope_scaling)", maxLength, positions, positions)
	}
	return nil
}

// maxLength is the truncation limit in force.
func (s *Scorer) maxLength() int { return s.Runner().MaxLen() }

// PromptIDs tokenises a prompt with BOS and truncates its middle to fit
// maxLength - maxNew tokens (runner.Runner.PromptIDs).
func PromptIDs(tok *tokenizer.Tokenizer, prompt string, maxLength, maxNew int) (ids []int, original int, err error) {
	r := &runner.Runner{Tok: tok, MaxLength: maxLength}
	return r.PromptIDs(prompt, maxNew)
}

// Score runs one sample with policy p (which must be fresh: policies keep
// per-sequence state) and scores its prediction.
func (s *Scorer) Score(ctx context.Context, sm Sample, p policy.Policy) (SampleResult, error) {
	r := SampleResult{ID: sm.ID, Task: sm.Task, Answers: sm.Answers, Metric: sm.Metric}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	if err := sm.Validate(); err != nil {
		return r, err
	}
	a, err := s.Runner().Answer(ctx, sm.Prompt, sm.MaxNewTokens, p)
	r.PromptTokens, r.OriginalTokens, r.Truncated = a.PromptTokens, a.OriginalTokens, a.Truncated
	if err != nil {
		return r, fmt.Errorf("task %s sample %s (policy %s): %w", sm.Task, sm.ID, p.Name(), err)
	}
	r.Seconds = a.Seconds
	r.GeneratedTokens = len(a.Tokens)
	r.Prediction = metric.PostProcess(sm.Dataset, a.Text)
	r.Score, err = metric.Score(sm.Metric, r.Prediction, sm.Answers, sm.AllClasses)
	if err != nil {
		return r, fmt.Errorf("task %s sample %s: %w", sm.Task, sm.ID, err)
	}
	st := a.Stats
	r.MeanPerLayer = st.MeanPerLayer()
	r.FinalPerLayer = a.CacheTokens
	r.MeanKVTokens = st.MeanKVTokens()
	r.PeakKVTokens = st.PeakKVTokens
	r.PeakKVBytes = st.PeakBytes
	return r, nil
}
