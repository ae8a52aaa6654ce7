package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/namm-dev/namm/sample"
	"github.com/namm-dev/namm/textgen"
)

func (s *Server) completions(w http.ResponseWriter, r *http.Request) { s.generate(w, r, false) }

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) { s.generate(w, r, true) }

// generate answers a completion or chat completion, whole or streamed.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, isChat bool) {
	body, e := s.readBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	req, e := decodeRequest(body, isChat)
	if e != nil {
		writeError(w, e)
		return
	}
	p, e := s.prepare(req)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	resp := &response{s: s, p: p, w: w, chat: isChat, created: time.Now().Unix()}
	resp.id = newID("cmpl-")
	if isChat {
		resp.id = newID("chatcmpl-")
	}
	job := p.job
	if req.Stream {
		job.OnEvent = resp.streamEvent
	}
	out, err := s.sched.Run(ctx, job)
	s.account(p, out)
	if err != nil {
		if ae := runError(ctx, err); ae != nil {
			if resp.streaming {
				resp.streamError(ae)
			} else {
				writeError(w, ae)
			}
		} else if !resp.streaming {
			w.WriteHeader(499) // client closed the request; recorded in the metrics only
		}
		return
	}
	if req.Stream {
		resp.streamEnd(out)
		return
	}
	writeJSON(w, resp.whole(out))
}

// account adds a finished (or stopped) generation to the metrics.
func (s *Server) account(p *prepared, out Outcome) {
	if out.Ran == 0 {
		return // never ran
	}
	s.metrics.prompt.Add(float64(len(p.job.Request.Prompt)))
	s.metrics.generated.Add(float64(len(out.Tokens)))
	s.metrics.evicted.Add(float64(out.EvictedTokens))
	if sec := out.Ran.Seconds(); sec > 0 && len(out.Tokens) > 0 {
		s.metrics.speed.Observe(float64(len(out.Tokens)) / sec)
	}
}

// response writes one request's answer.
type response struct {
	s         *Server
	p         *prepared
	w         http.ResponseWriter
	chat      bool
	id        string
	created   int64
	streaming bool // the event stream has started (headers sent)
	offset    int  // completion text streamed so far, in bytes (text_offset)
}

func (r *response) object(chunk bool) string {
	switch {
	case r.chat && chunk:
		return "chat.completion.chunk"
	case r.chat:
		return "chat.completion"
	}
	return "text_completion"
}

// whole is the non-streamed answer.
func (r *response) whole(out Outcome) map[string]any {
	choice := map[string]any{"index": 0, "finish_reason": out.FinishReason, "logprobs": nil}
	if r.chat {
		choice["message"] = map[string]any{"role": "assistant", "content": out.Text}
		if r.p.req.Logprobs {
			choice["logprobs"] = map[string]any{"content": r.chatLogprobs(out.Choices)}
		}
	} else {
		choice["text"] = out.Text
		if r.p.req.Logprobs {
			choice["logprobs"] = r.completionLogprobs(out.Choices, 0)
		}
	}
	return map[string]any{"id": r.id, "object": r.object(false), "created": r.created, "model": r.s.cfg.ModelID,
		"choices": []any{choice}, "usage": usageOf(r.p, out), "memory": r.p.memory}
}

// send writes one server-sent event, starting the stream if needed.
func (r *response) send(v any) error {
	if !r.streaming {
		h := r.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("Connection", "keep-alive")
		r.w.WriteHeader(http.StatusOK)
		r.streaming = true
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(r.w, "data: %s\n\n", data); err != nil {
		return err
	}
	if f, ok := r.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (r *response) chunk(choice map[string]any) map[string]any {
	c := map[string]any{"id": r.id, "object": r.object(true), "created": r.created, "model": r.s.cfg.ModelID,
		"choices": []any{choice}}
	if r.p.req.IncludeUsage {
		c["usage"] = nil
	}
	return c
}

// streamEvent sends a token's text as a chunk (every token's when log
// probabilities are asked for, else only tokens that made text final).
func (r *response) streamEvent(ev textgen.Event) error {
	if r.chat && !r.streaming {
		if err := r.send(r.chunk(map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": ""},
			"logprobs": nil, "finish_reason": nil})); err != nil {
			return err
		}
	}
	if ev.Text == "" && !r.p.req.Logprobs {
		return nil
	}
	choice := map[string]any{"index": 0, "logprobs": nil, "finish_reason": nil}
	if r.chat {
		choice["delta"] = map[string]any{"content": ev.Text}
		if r.p.req.Logprobs {
			choice["logprobs"] = map[string]any{"content": r.chatLogprobs([]sample.Choice{ev.Token})}
		}
	} else {
		choice["text"] = ev.Text
		if r.p.req.Logprobs {
			choice["logprobs"] = r.completionLogprobs([]sample.Choice{ev.Token}, r.offset)
		}
	}
	r.offset += len(r.s.cfg.Tokenizer.TokenText(ev.Token.ID))
	return r.send(r.chunk(choice))
}

// streamEnd sends the finish reason, the usage if asked for, and [DONE].
func (r *response) streamEnd(out Outcome) {
	choice := map[string]any{"index": 0, "logprobs": nil, "finish_reason": out.FinishReason}
	if r.chat {
		choice["delta"] = map[string]any{}
	} else {
		choice["text"] = ""
	}
	if r.send(r.chunk(choice)) != nil {
		return
	}
	if r.p.req.IncludeUsage {
		if r.send(map[string]any{"id": r.id, "object": r.object(true), "created": r.created, "model": r.s.cfg.ModelID,
			"choices": []any{}, "usage": usageOf(r.p, out)}) != nil {
			return
		}
	}
	r.done()
}

func (r *response) streamError(e *apiError) {
	if r.send(e.body()) == nil {
		r.done()
	}
}

func (r *response) done() {
	if _, err := fmt.Fprint(r.w, "data: [DONE]\n\n"); err == nil {
		if f, ok := r.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// finite keeps log probabilities JSON-encodable (-Inf as OpenAI's -9999).
func finite(lp float64) float64 {
	if math.IsInf(lp, -1) || math.IsNaN(lp) || lp < -9999 {
		return -9999
	}
	return lp
}

type chatTopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type chatLogprob struct {
	chatTopLogprob
	TopLogprobs []chatTopLogprob `json:"top_logprobs"`
}

func (r *response) tokenLogprob(id int, lp float64) chatTopLogprob {
	text := r.s.cfg.Tokenizer.TokenText(id)
	b := make([]int, len(text))
	for i := range len(text) {
		b[i] = int(text[i])
	}
	return chatTopLogprob{Token: text, Logprob: finite(lp), Bytes: b}
}

func (r *response) chatLogprobs(cs []sample.Choice) []chatLogprob {
	out := make([]chatLogprob, len(cs))
	for i, c := range cs {
		out[i] = chatLogprob{chatTopLogprob: r.tokenLogprob(c.ID, c.Logprob), TopLogprobs: []chatTopLogprob{}}
		for _, t := range c.Top {
			out[i].TopLogprobs = append(out[i].TopLogprobs, r.tokenLogprob(t.ID, t.Logprob))
		}
	}
	return out
}

// completionLogprobs is the legacy completions format; offset is where the
// first token's text starts in the completion.
func (r *response) completionLogprobs(cs []sample.Choice, offset int) map[string]any {
	tokens, lps, offs := []string{}, []float64{}, []int{}
	tops := []map[string]float64{}
	for _, c := range cs {
		text := r.s.cfg.Tokenizer.TokenText(c.ID)
		tokens = append(tokens, text)
		lps = append(lps, finite(c.Logprob))
		offs = append(offs, offset)
		offset += len(text)
		top := map[string]float64{}
		for _, t := range c.Top {
			top[r.s.cfg.Tokenizer.TokenText(t.ID)] = finite(t.Logprob)
		}
		tops = append(tops, top)
	}
	return map[string]any{"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offs}
}
