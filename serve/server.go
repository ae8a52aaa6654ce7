// Package serve is an OpenAI-compatible HTTP server over the engine:
// /v1/models, /v1/completions and /v1/chat/completions (streamed as
// server-sent events on request), /health and /metrics. A request may pick
// its memory policy ("memory", a spec as on the command line) and budget
// ("kv_budget"); its usage reports the KV tokens kept. The memory
// inspector, a page at / over POST /v1/inspect, shows what a policy keeps
// and evicts, token by token and layer by layer (inspect.go, web/).
package serve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/namm-dev/namm/chat"
	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/tokenizer"
)

// Config configures a Server.
type Config struct {
	ModelID   string // the id /v1/models lists and responses name
	Engine    *engine.Engine
	Tokenizer *tokenizer.Tokenizer
	// Template renders chat messages; nil uses FallbackTemplate.
	Template *chat.Template
	// Memory and Budget are the policy of requests that name none.
	Memory string
	Budget policy.Budget
	// Scheduler runs the generations; nil makes a Pool of Slots slots
	// (default 4) and a queue of MaxQueue (default 4 x Slots): one batch of
	// Slots sequences (NewBatchPool), or with Independent a session of its
	// own per slot (NewSlotPool).
	Scheduler      Scheduler
	Slots          int
	MaxQueue       int
	Independent    bool
	RequestTimeout time.Duration // default 10 minutes
	MaxBodyBytes   int64         // default 4 MiB
	// APIKey, if set, must come as "Authorization: Bearer KEY" on /v1/ and
	// /metrics.
	APIKey string
	Logger *slog.Logger
}

// FallbackTemplate formats chats for models without a chat template (base
// models such as the embedded one): one "role: content" line per message,
// then "assistant:" for the reply. The tokenizer adds its BOS.
const FallbackTemplate = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}" +
	"{% if add_generation_prompt %}assistant:{% endif %}"

// Server answers the API.
type Server struct {
	cfg      Config
	sched    Scheduler
	tmpl     *chat.Template
	fallback bool // tmpl is FallbackTemplate
	stopIDs  []int
	metrics  *metrics
	created  int64
	mux      *http.ServeMux
	methods  map[string]string // path -> its method, for 405s

	policyOnce sync.Once
	policyList []policyInfo
}

// New checks cfg and makes a server.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil || cfg.Tokenizer == nil {
		return nil, errors.New("serve: an engine and a tokenizer are required")
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 4
	}
	if cfg.MaxQueue < 0 {
		return nil, fmt.Errorf("serve: the queue size must be >= 0, got %d", cfg.MaxQueue)
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 4 * cfg.Slots
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Minute
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.Memory == "" {
		cfg.Memory = "full"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if _, err := policy.New(cfg.Memory, cfg.Budget); err != nil {
		return nil, fmt.Errorf("serve: default memory policy: %w", err)
	}
	s := &Server{cfg: cfg, sched: cfg.Scheduler, tmpl: cfg.Template, created: time.Now().Unix()}
	if s.sched == nil {
		if cfg.Independent {
			s.sched = NewSlotPool(cfg.Engine, cfg.Tokenizer, cfg.Slots, cfg.MaxQueue)
		} else {
			s.sched = NewBatchPool(cfg.Engine, cfg.Tokenizer, cfg.Slots, cfg.MaxQueue)
		}
	}
	if s.tmpl == nil {
		t, err := chat.New(FallbackTemplate, nil)
		if err != nil {
			return nil, err
		}
		s.tmpl, s.fallback = t, true
	}
	s.stopIDs = append(s.stopIDs, cfg.Engine.Config.EOS...)
	if id, ok := cfg.Tokenizer.EOS(); ok {
		s.stopIDs = append(s.stopIDs, id)
	}
	s.metrics = newMetrics(s.sched.Load)
	s.mux = http.NewServeMux()
	s.methods = map[string]string{}
	s.route("GET /health", "health", false, s.health)
	s.route("GET /v1/models", "models", true, s.models)
	s.route("POST /v1/completions", "completions", true, s.completions)
	s.route("POST /v1/chat/completions", "chat", true, s.chatCompletions)
	s.route("POST /v1/inspect", "inspect", true, s.inspect)
	s.route("GET /v1/policies", "policies", true, s.policies)
	s.routePage()
	metricsHandler := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	s.route("GET /metrics", "metrics", true, func(w http.ResponseWriter, r *http.Request) { metricsHandler.ServeHTTP(w, r) })
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if method, ok := s.methods[r.URL.Path]; ok {
			w.Header().Set("Allow", method)
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
				Message: fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, method)})
			return
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("no route %s %s (routes: GET /, GET /v1/models, GET /v1/policies, POST /v1/completions, POST /v1/chat/completions, POST /v1/inspect, GET /health, GET /metrics)", r.Method, r.URL.Path)})
	})
	return s, nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// statusWriter records the status code for the metrics, and passes
// flushes through for streaming.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// route registers a handler with authentication (auth), panic recovery and
// metrics.
func (s *Server) route(pattern, endpoint string, auth bool, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	s.methods[path] = method
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				s.cfg.Logger.Error("panic in handler", "endpoint", endpoint, "panic", v)
				if sw.code == 0 {
					writeError(sw, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: "internal error"})
				}
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(endpoint, fmt.Sprint(code)).Inc()
			s.metrics.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		}()
		if auth && s.cfg.APIKey != "" && !s.authorized(r) {
			writeError(sw, &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
				Message: "missing or wrong API key: send the header \"Authorization: Bearer KEY\""})
			return
		}
		h(sw, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	l := s.sched.Load()
	writeJSON(w, map[string]any{"status": "ok", "model": s.cfg.ModelID, "slots": l.Slots, "busy": l.Busy, "queued": l.Queued})
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"object": "list", "data": []map[string]any{
		{"id": s.cfg.ModelID, "object": "model", "created": s.created, "owned_by": "namm",
			"max_model_len": s.cfg.Engine.Config.MaxPositionEmbeddings},
	}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads a request body up to the size limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Message: fmt.Sprintf("the body is larger than the limit of %d bytes", s.cfg.MaxBodyBytes)}
		}
		return nil, badRequest("reading the body: %v", err)
	}
	return body, nil
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// requestContext bounds a request by the timeout.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}
