package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/namm-dev/namm/chat"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/sample"
	"github.com/namm-dev/namm/textgen"
)

// defaultCompletionTokens is OpenAI's max_tokens default for completions.
const defaultCompletionTokens = 16

// prepared is a request turned into a job.
type prepared struct {
	req    *request
	job    Job
	memory string // the policy's name
}

// prepare checks a decoded request against the model and builds its job.
func (s *Server) prepare(req *request) (*prepared, *apiError) {
	if req.Model != "" && req.Model != s.cfg.ModelID {
		return nil, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found",
			Message: fmt.Sprintf("model: %q is not served here; this server serves %q", req.Model, s.cfg.ModelID)}
	}
	prompt, promptField, e := s.promptIDs(req)
	if e != nil {
		return nil, e
	}
	ctxLen := s.cfg.Engine.Config.MaxPositionEmbeddings
	if len(prompt) >= ctxLen {
		return nil, badField(promptField, "the prompt is %d tokens, and the model's context is %d", len(prompt), ctxLen)
	}
	maxTokens := req.MaxTokens
	if maxTokens == 0 {
		maxTokens = defaultCompletionTokens
		if req.Chat {
			maxTokens = ctxLen - len(prompt)
		}
		maxTokens = min(maxTokens, ctxLen-len(prompt))
	} else if len(prompt)+maxTokens > ctxLen {
		return nil, badField(req.MaxTokensField, "%d prompt tokens + %d new tokens exceed the model's context of %d", len(prompt), maxTokens, ctxLen)
	}
	sp := sample.Params{Temperature: req.Temperature, TopP: req.TopP, TopK: req.TopK, MinP: req.MinP, Seed: req.Seed,
		FrequencyPenalty: req.Frequency, PresencePenalty: req.Presence}
	if req.Logprobs {
		sp.Logprobs, sp.TopLogprobs = true, req.TopLogprobs
	}
	if err := sp.Validate(); err != nil {
		var fe *sample.FieldError
		if errors.As(err, &fe) {
			field := fe.Field
			if field == "top_logprobs" && !req.Chat {
				field = "logprobs"
			}
			return nil, badField(field, "%s", fe.Msg)
		}
		return nil, badRequest("%v", err)
	}
	p, e := s.policy(req)
	if e != nil {
		return nil, e
	}
	return &prepared{req: req, memory: p.Name(), job: Job{Request: textgen.Request{
		Prompt: prompt, MaxTokens: maxTokens, Sampling: sp, Policy: p, StopTokens: s.stopIDs, StopStrings: req.Stop,
	}}}, nil
}

// promptIDs tokenises the prompt, or renders and tokenises the chat; it
// also returns the field that holds the prompt.
func (s *Server) promptIDs(req *request) ([]int, string, *apiError) {
	tok := s.cfg.Tokenizer
	if !req.Chat {
		if req.PromptIDs != nil {
			vocab := s.cfg.Engine.Config.VocabSize
			for i, id := range req.PromptIDs {
				if id < 0 || id >= vocab {
					return nil, "prompt", badField(fmt.Sprintf("prompt[%d]", i), "token id %d is outside the vocabulary [0, %d)", id, vocab)
				}
			}
			return req.PromptIDs, "prompt", nil
		}
		return tok.Encode(req.Prompt, true), "prompt", nil
	}
	text, err := s.tmpl.Render(req.Messages, req.Tools, req.AddGenerationPrompt, nil)
	if err != nil {
		var te *chat.TemplateError
		if errors.As(err, &te) {
			return nil, "messages", badField("messages", "%s", te.Message)
		}
		return nil, "messages", badField("messages", "the chat template failed on these messages: %v", err)
	}
	// A model's template writes its own BOS; the fallback relies on the
	// tokenizer's.
	ids := tok.Encode(text, s.fallback)
	if len(ids) == 0 {
		return nil, "messages", badField("messages", "the rendered chat is empty")
	}
	return ids, "messages", nil
}

// policy makes the request's memory policy: the server's default, or the
// request's "memory" with its "kv_budget". Requests may not name files.
func (s *Server) policy(req *request) (policy.Policy, *apiError) {
	spec, budget := s.cfg.Memory, s.cfg.Budget
	if req.Memory != "" {
		spec, budget = req.Memory, policy.Budget{}
		if namesFile(spec) {
			return nil, badField("memory", "%q: requests may not name files; the server's --memory may", spec)
		}
	}
	if req.KVBudget > 0 {
		budget = policy.Budget{Tokens: req.KVBudget}
	}
	p, err := policy.New(spec, budget)
	if err == nil {
		return p, nil
	}
	if req.KVBudget > 0 {
		if _, plain := policy.New(spec, policy.Budget{}); plain == nil {
			return nil, badField("kv_budget", "%v", err)
		}
	}
	return nil, badField("memory", "%v", err)
}

// namesFile reports whether a policy spec has a path option (bare values
// are paths: "namm:PATH").
func namesFile(spec string) bool {
	_, rest, _ := strings.Cut(strings.TrimSpace(spec), ":")
	if rest == "" {
		return false
	}
	for _, kv := range strings.Split(rest, ",") {
		k, _, found := strings.Cut(kv, "=")
		if !found || strings.TrimSpace(k) == "path" {
			return true
		}
	}
	return false
}

// runError maps a scheduler error to an API error (nil: the client went
// away, nothing to answer).
func runError(ctx context.Context, err error) *apiError {
	switch {
	case errors.Is(err, ErrQueueFull):
		return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusGatewayTimeout, Type: "timeout", Message: "the request took longer than the server's request timeout"}
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return nil
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
}

// usage is OpenAI's usage object with the KV extension: the KV tokens kept
// per layer, mean over the passes and peak.
type usage struct {
	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	TotalTokens      int     `json:"total_tokens"`
	KVTokensMean     float64 `json:"kv_tokens_mean"`
	KVTokensPeak     float64 `json:"kv_tokens_peak"`
}

func usageOf(p *prepared, out Outcome) usage {
	n := len(p.job.Request.Prompt)
	return usage{PromptTokens: n, CompletionTokens: len(out.Tokens), TotalTokens: n + len(out.Tokens),
		KVTokensMean: out.MeanKVTokens, KVTokensPeak: out.PeakKVTokens}
}
