// Package textgen runs one sequence's generation on an engine session:
// prefill, then sample token by token until a stop token, a stop string, the
// token limit, or cancellation, streaming text as it becomes final. The
// generate command and the server both use it.
package textgen

import (
	"context"
	"slices"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/sample"
)

// Request is one generation.
type Request struct {
	Prompt    []int
	MaxTokens int
	Sampling  sample.Params
	// StopTokens end generation after they are produced (EOS ids); their
	// text is not part of the output.
	StopTokens []int
	// StopStrings end the text before their first occurrence.
	StopStrings []string
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
}

// Decoder turns ids into text.
type Decoder func(ids []int) string

// Run generates on s, which must be fresh or hold the context to continue
// from. onEvent (may be nil) sees each token; an error from it stops the
// generation and is returned. Cancelling ctx stops between tokens with
// ctx.Err().
func Run(ctx context.Context, s *engine.Session, decode Decoder, req Request, onEvent func(Event) error) (Result, error) {
	var res Result
	if err := ctx.Err(); err != nil {
		return res, err
	}
	logits, err := s.Prefill(req.Prompt)
	if err != nil {
		return res, err
	}
	sampler := sample.New(req.Sampling)
	stream := sample.NewStream(decode, req.StopStrings)
	res.FinishReason = FinishLength
	for len(res.Tokens) < req.MaxTokens {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		c := sampler.Next(logits)
		res.Tokens = append(res.Tokens, c.ID)
		res.Choices = append(res.Choices, c)
		if slices.Contains(req.StopTokens, c.ID) {
			res.FinishReason = FinishStop
			if onEvent != nil {
				if err := onEvent(Event{Token: c, Text: stream.Flush()}); err != nil {
					return res, err
				}
			}
			break
		}
		text, stopped := stream.Push(c.ID)
		if stopped {
			res.FinishReason = FinishStop
		} else if len(res.Tokens) == req.MaxTokens {
			text += stream.Flush()
		}
		if onEvent != nil {
			if err := onEvent(Event{Token: c, Text: text}); err != nil {
				return res, err
			}
		}
		if stopped || len(res.Tokens) == req.MaxTokens {
			break
		}
		if logits, err = s.Decode(c.ID); err != nil {
			return res, err
		}
	}
	res.Text = stream.Text()
	st := s.Stats()
	res.MeanKVTokens = st.MeanKVTokens()
	res.PeakKVTokens = float64(st.PeakKVTokens) / float64(max(1, len(s.CacheTokens())))
	return res, nil
}
