package serve

import (
	"encoding/json"
	"errors"

	"net/http"
	"sync"

	"github.com/namm-dev/namm/inspect"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/textgen"
)

// The memory inspector: POST /v1/inspect runs a completion and streams, as
// server-sent events, what the memory policy does to the cache (package
// inspect's trace, event by event); GET /v1/policies lists the policies a
// request may pick; GET / is the page that draws them (web/).

// defaultInspectTokens is max_tokens when an inspect request gives none.
const defaultInspectTokens = 64

// The events of an inspect stream; "type" says which part of the trace
// each one carries.
type (
	startEvent struct {
		Type string `json:"type"` // "start"
		inspect.Header
	}
	stepEvent struct {
		Type string `json:"type"` // "step"
		inspect.Step
	}
	tokenEvent struct {
		Type string `json:"type"` // "token"
		inspect.Token
		// Piece is the generated text the token made final (text is held
		// back while it may be a stop string or part of a character).
		Piece string `json:"piece"`
	}
	endEvent struct {
		Type string `json:"type"` // "end"
		inspect.Summary
	}
	errorEvent struct {
		Type  string      `json:"type"` // "error"
		Error errorDetail `json:"error"`
	}
)

// eventQueue hands events from the batch's goroutine and the request's
// generation to the goroutine writing the stream, without ever blocking
// the batch.
type eventQueue struct {
	mu    sync.Mutex
	items []any
	wake  chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{wake: make(chan struct{}, 1)} }

func (q *eventQueue) push(v any) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take waits for events and returns them all.
func (q *eventQueue) take() []any {
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		if len(items) > 0 {
			return items
		}
		<-q.wake
	}
}

// runEnd is the last item of a queue: the job's outcome.
type runEnd struct {
	out Outcome
	err error
}

func (s *Server) inspect(w http.ResponseWriter, r *http.Request) {
	body, e := s.readBody(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	req, e := decodeRequest(body, false)
	if e != nil {
		writeError(w, e)
		return
	}
	var f fields
	_ = json.Unmarshal(body, &f) // decodeRequest parsed it
	if !f.has("temperature") {
		req.Temperature = 0 // greedy unless asked: policies compare on the same tokens
	}
	p, e := s.prepare(req)
	if e != nil {
		writeError(w, e)
		return
	}
	if !f.has("max_tokens") {
		room := s.cfg.Engine.Config.MaxPositionEmbeddings - len(p.job.Request.Prompt)
		p.job.Request.MaxTokens = min(defaultInspectTokens, room)
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	tok := s.cfg.Tokenizer
	q := newEventQueue()
	hdr := inspect.NewHeader(s.cfg.ModelID, s.cfg.Engine, p.memory, tok, p.job.Request.Prompt)
	rec := inspect.NewRecorder(hdr, func(st inspect.Step) { q.push(stepEvent{"step", st}) })
	job := p.job
	job.Request.OnStep = rec.Observe
	job.OnEvent = func(ev textgen.Event) error {
		t := rec.AddGenerated(tok, ev.Token.ID)[0]
		q.push(tokenEvent{"token", t, ev.Text})
		return nil
	}
	go func() {
		out, err := s.sched.Run(ctx, job)
		q.push(runEnd{out, err})
	}()
	resp := &response{s: s, p: p, w: w}
	started := false
	start := func() {
		if !started {
			started = true
			_ = resp.send(startEvent{"start", hdr})
		}
	}
	for {
		for _, item := range q.take() {
			end, ok := item.(runEnd)
			if !ok {
				start()
				if resp.send(item) != nil {
					cancel() // the client went away: free the slot
				}
				continue
			}
			s.account(p, end.out)
			if end.err != nil {
				ae := runError(ctx, end.err)
				switch {
				case ae == nil:
				case !started && errors.Is(end.err, ErrQueueFull):
					writeError(w, ae)
				default:
					start()
					_ = resp.send(errorEvent{"error", ae.body().Error})
				}
				return
			}
			start()
			tr := rec.Finish(end.out.Text, end.out.FinishReason)
			_ = resp.send(endEvent{"end", tr.Summary})
			return
		}
	}
}

// policyInfo describes a memory policy to the inspector page.
type policyInfo struct {
	Name        string `json:"name"`
	Help        string `json:"help"`
	NeedsBudget bool   `json:"needs_budget"`
}

// policies lists the memory policies a request may name, and the model.
func (s *Server) policies(w http.ResponseWriter, r *http.Request) {
	s.policyOnce.Do(func() {
		for _, n := range policy.Names() {
			_, err := policy.New(n, policy.Budget{})
			s.policyList = append(s.policyList, policyInfo{Name: n, Help: policy.Help(n),
				NeedsBudget: err != nil && policyNeedsBudget(n)})
		}
	})
	writeJSON(w, map[string]any{"model": s.cfg.ModelID, "memory": s.cfg.Memory, "max_model_len": s.cfg.Engine.Config.MaxPositionEmbeddings,
		"layers": s.cfg.Engine.Config.NumLayers, "policies": s.policyList})
}

// policyNeedsBudget reports whether a policy that failed without a budget
// is made with one.
func policyNeedsBudget(name string) bool {
	_, err := policy.New(name, policy.Budget{Tokens: 64})
	return err == nil
}
