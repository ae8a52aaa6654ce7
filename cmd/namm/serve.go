package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/chat"
	"github.com/namm-dev/namm/hub"
	"github.com/namm-dev/namm/serve"
)

func init() { extraCommands = append(extraCommands, serveCmd) }

func serveCmd() *cobra.Command {
	var mf modelFlags
	var mem memoryFlags
	var addr, apiKey, templateFile string
	var sched schedFlags
	var queue int
	var timeout time.Duration
	var maxBody int64
	cmd := &cobra.Command{
		Use:   "serve [--model DIR|ORG/NAME] [--memory POLICY] [--addr 127.0.0.1:8080]",
		Short: "Serve the model over an OpenAI-compatible HTTP API",
		Long: `serve answers OpenAI's API: GET /v1/models, POST /v1/completions, POST
/v1/chat/completions (stream: true sends server-sent events), GET /health and
GET /metrics (Prometheus). A request may choose its memory policy with the
extension fields "memory" (a spec as --memory takes, without file paths) and
"kv_budget"; usage reports kv_tokens_mean and kv_tokens_peak (per layer).
Up to --slots requests run at once, each with its own session, memory
policy and sampler: batched (--scheduler batch: each step is one pass over
the weights for all of them, requests joining and leaving between steps) or
on sessions that run by themselves (--scheduler slots). Up to --queue more
wait, and further ones get 429.`,
		Example: `  namm serve                                   # the embedded model on 127.0.0.1:8080
  namm serve --model Qwen/Qwen2-0.5B-Instruct --memory namm --slots 2
  namm serve --addr 0.0.0.0:8080 --api-key "$KEY"
  curl http://127.0.0.1:8080/v1/completions -d '{"prompt": "Once upon a time", "max_tokens": 20, "memory": "h2o", "kv_budget": 256}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if apiKey == "" {
				apiKey = os.Getenv("NAMM_API_KEY")
			}
			if !loopback(addr) && apiKey == "" {
				return fmt.Errorf("--addr %s listens beyond loopback: give --api-key (or NAMM_API_KEY) so that requests need \"Authorization: Bearer KEY\"", addr)
			}
			b, err := mem.budgetSpec()
			if err != nil {
				return err
			}
			dir, err := resolveModel(mf.model)
			if err != nil {
				return err
			}
			e, tok, err := mf.load()
			if err != nil {
				return err
			}
			if err := sched.resolve(mf.backend); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			var tmpl *chat.Template
			if templateFile != "" {
				src, err := os.ReadFile(templateFile)
				if err != nil {
					return err
				}
				if tmpl, err = chat.LoadDirWith(dir, string(src)); err != nil {
					return fmt.Errorf("--chat-template %s: %w", templateFile, err)
				}
			} else if tmpl, err = chat.LoadDir(dir); errors.Is(err, chat.ErrNoTemplate) {
				log.Info("the model has no chat template: chats use the plain \"role: content\" fallback", "model", dir)
				tmpl = nil
			} else if err != nil {
				return err
			}
			srv, err := serve.New(serve.Config{
				ModelID: modelID(mf.model), Engine: e, Tokenizer: tok, Template: tmpl,
				Memory: mem.memory, Budget: b, Slots: sched.slots, MaxQueue: queue, Independent: sched.independent(),
				RequestTimeout: timeout, MaxBodyBytes: maxBody, APIKey: apiKey, Logger: log,
			})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = hs.Shutdown(shutdown)
			}()
			fmt.Fprintf(cmd.ErrOrStderr(), "namm: serving %s on http://%s (memory %s, %d slots, scheduler %s)\n", modelID(mf.model), ln.Addr(), mem.memory, sched.slots, sched.kind)
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	mf.register(cmd)
	mem.register(cmd)
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (beyond loopback, --api-key is required)")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "require \"Authorization: Bearer KEY\" (default: $NAMM_API_KEY)")
	sched.register(cmd)
	cmd.Flags().IntVar(&queue, "queue", 64, "requests that may wait for a slot; more get 429")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "longest time a request may take, queueing included")
	cmd.Flags().Int64Var(&maxBody, "max-body", 4<<20, "largest request body in bytes")
	cmd.Flags().StringVar(&templateFile, "chat-template", "", "Jinja chat template file (default: the model's tokenizer_config.json or chat_template.jinja)")
	return cmd
}

// schedFlags choose how the server runs concurrent requests.
type schedFlags struct {
	kind  string
	slots int
}

func (f *schedFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kind, "scheduler", "", `"batch" (requests share each pass over the weights) or "slots" (a session of its own per slot); default: batch on the CPU, slots on a GPU`)
	cmd.Flags().IntVar(&f.slots, "slots", 0, "requests run at once (default: 16 batched, 4 slots)")
}

// resolve fills the defaults for backend. On the CPU one batch serves
// concurrent clients faster than independent sessions, which only slow each
// other (docs/performance.md); on a GPU independent sessions' passes may
// overlap, and batched fused passes are not measured against them yet.
func (f *schedFlags) resolve(backend string) error {
	if f.kind == "" {
		f.kind = "batch"
		if strings.HasPrefix(backend, "xla") {
			f.kind = "slots"
		}
	}
	switch f.kind {
	case "batch":
		if f.slots <= 0 {
			f.slots = 16
		}
	case "slots":
		if f.slots <= 0 {
			f.slots = 4
		}
	default:
		return fmt.Errorf("--scheduler %q: want batch or slots", f.kind)
	}
	return nil
}

func (f *schedFlags) independent() bool { return f.kind == "slots" }

// loopback reports whether addr listens only on the loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// modelID is the name the API serves the model under.
func modelID(flag string) string {
	switch {
	case flag == "":
		return "namm-model-a"
	case hub.IsID(flag):
		if _, err := os.Stat(flag); err != nil {
			return flag
		}
	}
	return filepath.Base(filepath.Clean(flag))
}
