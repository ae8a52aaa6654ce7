package evolve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/internal/modelid"
	"github.com/namm-dev/namm/namm"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/runner"
	"github.com/namm-dev/namm/task/gen"
	"github.com/namm-dev/namm/task/metric"
	"github.com/namm-dev/namm/tokenizer"
)

// Evaluator answers and scores Jobs with one loaded model. It is safe for
// concurrent use: concurrent jobs share the batches of its Runner (each
// with its own cache and policy, e.g. its own NAMM parameters).
type Evaluator struct {
	Engine      *engine.Engine
	Tok         *tokenizer.Tokenizer
	Store       *SampleStore
	Fingerprint string // ModelFingerprint of the model directory
	Name        string // reported in Result.Worker
	// Runner generates; set Runner.Batch (sequences per pass) before the
	// first job.
	Runner *runner.Runner

	mu  sync.Mutex
	ids map[string][]int // sample ID -> prompt token ids
}

// NewEvaluator wraps a loaded model and its tokenizer (batch 1).
func NewEvaluator(e *engine.Engine, tok *tokenizer.Tokenizer, fingerprint string) *Evaluator {
	return &Evaluator{Engine: e, Tok: tok, Store: NewSampleStore(tok), Fingerprint: fingerprint,
		Runner: runner.New(e, tok, 1), ids: map[string][]int{}}
}

// ModelFingerprint identifies the model in dir by content (modelid.Of's
// hash of config, tokenizer and weights): workers and checkpoints accept the
// same files anywhere and refuse others.
func ModelFingerprint(dir string) (string, error) {
	id, err := modelid.Of(dir)
	if err != nil {
		return "", err
	}
	return id.Hash, nil
}

// promptHash is the first 8 bytes of SHA-256 of the prompt, in hex.
func promptHash(prompt string) string {
	h := sha256.Sum256([]byte(prompt))
	return hex.EncodeToString(h[:8])
}

// Run evaluates one job; failures are reported in Result.Err.
func (ev *Evaluator) Run(job Job) Result {
	res, err := ev.run(job)
	res.Batch, res.Index, res.Worker = job.Batch, job.Index, ev.Name
	if err != nil {
		res.Err = fmt.Sprintf("job %s/%d (%s#%d): %v", job.Batch, job.Index, job.Spec, job.Sample, err)
	}
	return res
}

// Accepts reports why this evaluator cannot run job (nil when it can): the
// job is for another model, or the prompt regenerated here differs from the
// coordinator's (another generator or tokenizer version).
func (ev *Evaluator) Accepts(job Job) error {
	if job.Model != ev.Fingerprint {
		return fmt.Errorf("job is for model %s, this evaluator has %s (give this worker the coordinator's model files)", job.Model, ev.Fingerprint)
	}
	if job.PromptHash == "" {
		return nil
	}
	sample, err := ev.Store.Sample(job.Spec, job.Sample)
	if err != nil {
		return nil // reported by Run, as for every worker
	}
	if h := promptHash(sample.Prompt); h != job.PromptHash {
		return fmt.Errorf("regenerated prompt hash %s, the coordinator's is %s (different generator or tokenizer version)", h, job.PromptHash)
	}
	return nil
}

func (ev *Evaluator) run(job Job) (Result, error) {
	var res Result
	if err := ev.Accepts(job); err != nil {
		return res, err
	}
	sample, err := ev.Store.Sample(job.Spec, job.Sample)
	if err != nil {
		return res, err
	}
	var p policy.Policy
	if job.Params != nil {
		np, err := namm.New(&namm.File{Params: job.Params, Norm: job.Norm}, namm.Config{})
		if err != nil {
			return res, err
		}
		p = np
	}
	return ev.answer(sample, p, job.MaxNew)
}

// answer generates greedily for sample under p (nil: full cache) and scores
// the answer.
func (ev *Evaluator) answer(sample gen.Sample, p policy.Policy, maxNew int) (Result, error) {
	var res Result
	budget := sample.MaxNewTokens
	if maxNew > 0 && maxNew < budget {
		budget = maxNew
	}
	out, err := ev.Runner.Generate(context.Background(), runner.Request{Prompt: ev.promptIDs(sample), MaxNew: budget, Policy: p}, nil)
	if err != nil {
		return res, err
	}
	pred := ev.Tok.Decode(out.Tokens, true)
	score, err := metric.Score(sample.Metric, pred, sample.Answers, nil)
	if err != nil {
		return res, err
	}
	res.Score, res.KVMean, res.KVPeak, res.NewTok = score, out.Stats.MeanKVTokens(), out.Stats.PeakKVTokens, len(out.Tokens)
	return res, nil
}

func (ev *Evaluator) promptIDs(sample gen.Sample) []int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ids, ok := ev.ids[sample.ID]
	if !ok {
		ids = ev.Tok.Encode(sample.Prompt, true)
		ev.ids[sample.ID] = ids
	}
	return ids
}

// Normalization computes the frozen NAMM normalisation the reference way
// (namm.ComputeNormalization): all-zero parameters, that is a policy that
// evicts nothing, run over the given samples in order, generating as the
// evaluation does.
func (ev *Evaluator) Normalization(samples []gen.Sample, maxNew int) (namm.Norm, error) {
	return namm.ComputeNormalization(func(p policy.Policy) error {
		for _, s := range samples {
			if _, err := ev.answer(s, p, maxNew); err != nil {
				return fmt.Errorf("%s: %w", s.ID, err)
			}
		}
		return nil
	})
}
