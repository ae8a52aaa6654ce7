// Package textgen turns a request's tokens into text: it submits the
// request to a runner (which batches, samples and stops at stop tokens and
// the token limit) and, as the tokens come, streams the text that became
// final, ends it at the first stop string, and names the finish reason.
// The generate command and the server both use it.
package textgen

import (
	"context"
	"slices"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/runner"
	"github.com/namm-dev/namm/sample"
)

// Request is one generation.
type Request struct {
	Prompt    []int
	MaxTokens int
	Sampling  sample.Params
	// Policy is the memory policy, a fresh instance (policies keep
	// per-sequence state); nil is the full cache.
	Policy policy.Policy
	// StopTokens end generation after they are produced; their text is not
	// part of the output. nil uses the runner's (the EOS ids).
	StopTokens []int
	// StopStrings end the text before their first occurrence.
	StopStrings []string
	// OnStep, if set, sees each pass's policy step (runner.Request.OnStep:
	// on the batch's goroutine, it must not block).
	OnStep func(engine.PolicyStep)
}

// Finish reasons, as OpenAI names them.
const (
	FinishStop   = "stop"   // a stop token or stop string
	FinishLength = "length" // MaxTokens reached
)

// Event is one generated token and the text it made final (maybe empty:
// text is held back while it could still be a stop string or a partial
// character).
type Event struct {
	Token sample.Choice
	Text  string
}

// Result is a finished generation.
type Result struct {
	Tokens       []int
	Choices      []sample.Choice // per token, with log probabilities
	Text         string
	FinishReason string
	// KV tokens held per layer: the mean over the passes, and the peak (of
	// the total over layers, divided by the layers), as eval reports them.
	MeanKVTokens, PeakKVTokens float64
	// The sequence's cache use, the tokens held per layer at the end, and
	// the tokens the policy evicted (summed over layers). A stop string is
	// found on the caller's goroutine while the batch goes on, so the
	// sequence may have run a step or two past it before it left; these
	// figures count those steps.
	Stats         engine.SessionStats
	CacheTokens   []int
	EvictedTokens int
}

// Run generates req on r. onEvent (may be nil) sees each token, on the
// caller's goroutine: a slow one holds back no other request of the batch.
// An error from it ends the request (its place in the batch is freed at the
// next step) and is returned. Cancelling ctx does the same with ctx.Err().
func Run(ctx context.Context, r *runner.Runner, req Request, onEvent func(Event) error) (Result, error) {
	var res Result
	if err := ctx.Err(); err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stops := req.StopTokens
	if stops == nil {
		stops = r.StopIDs()
	}
	h := r.Submit(ctx, runner.Request{Prompt: req.Prompt, MaxNew: req.MaxTokens, Policy: req.Policy, Stop: stops, Sampling: req.Sampling, OnStep: req.OnStep})
	// abort ends the request early and waits until it has left the batch.
	abort := func(err error) (Result, error) {
		cancel()
		for range h.Tokens() {
		}
		_, _ = h.Wait()
		return res, err
	}
	stream := sample.NewStream(func(ids []int) string { return r.Tok.Decode(ids, true) }, req.StopStrings)
	res.FinishReason = FinishLength
	for c := range h.Tokens() {
		if err := ctx.Err(); err != nil {
			return abort(err)
		}
		res.Tokens = append(res.Tokens, c.ID)
		res.Choices = append(res.Choices, c)
		ev := Event{Token: c}
		last := len(res.Tokens) == req.MaxTokens
		if slices.Contains(stops, c.ID) {
			res.FinishReason, last = FinishStop, true
			ev.Text = stream.Flush()
		} else {
			var stopped bool
			ev.Text, stopped = stream.Push(c.ID)
			if stopped {
				res.FinishReason, last = FinishStop, true
			} else if last {
				ev.Text += stream.Flush()
			}
		}
		if onEvent != nil {
			if err := onEvent(ev); err != nil {
				return abort(err)
			}
		}
		if last {
			h.Stop()
			break
		}
	}
	for range h.Tokens() {
	}
	out, err := h.Wait()
	if err != nil {
		return res, err
	}
	res.Text = stream.Text()
	res.Stats, res.CacheTokens, res.EvictedTokens = out.Stats, out.CacheTokens, out.EvictedTokens()
	res.MeanKVTokens = out.Stats.MeanKVTokens()
	res.PeakKVTokens = float64(out.Stats.PeakKVTokens) / float64(max(1, len(out.CacheTokens)))
	return res, nil
}
