package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/textgen"
	"github.com/namm-dev/namm/tokenizer"
)

const modelDir = "../testdata/models/tiny-llama"

var (
	loadOnce sync.Once
	testEng  *engine.Engine
	testTok  *tokenizer.Tokenizer
	loadErr  error
)

func model(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	t.Helper()
	loadOnce.Do(func() {
		if testEng, loadErr = engine.Load(modelDir, engine.Options{}); loadErr == nil {
			testTok, loadErr = tokenizer.LoadDir(modelDir)
		}
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return testEng, testTok
}

// start runs a real server on a loopback port.
func start(t *testing.T, cfg Config) (*httptest.Server, *Server) {
	t.Helper()
	cfg.Engine, cfg.Tokenizer = model(t)
	if cfg.ModelID == "" {
		cfg.ModelID = "tiny-llama"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, s
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: not JSON: %q", url, data)
	}
	return resp.StatusCode, out
}

func text(t *testing.T, out map[string]any) string {
	t.Helper()
	ch := out["choices"].([]any)[0].(map[string]any)
	if msg, ok := ch["message"].(map[string]any); ok {
		return msg["content"].(string)
	}
	return ch["text"].(string)
}

// greedyText is the reference: the engine's own greedy decoding of prompt,
// alone in its session.
func greedyText(t *testing.T, prompt string, n int) string {
	e, tok := model(t)
	ids, err := e.Greedy(tok.Encode(prompt, true), n, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Decode(ids, true)
}

// sse reads a stream's data events up to [DONE].
func sse(t *testing.T, resp *http.Response) []map[string]any {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var events []map[string]any
	sc := bufio.NewScanner(resp.Body)
	sawDone := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		if sawDone {
			t.Fatalf("data after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			sawDone = true
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		events = append(events, ev)
	}
	if !sawDone {
		t.Fatal("the stream did not end with [DONE]")
	}
	return events
}

func TestCompletionsGreedyMatchesEngine(t *testing.T) {
	ts, _ := start(t, Config{})
	const prompt = "Once upon a time"
	code, out := post(t, ts.URL+"/v1/completions", `{"model": "tiny-llama", "prompt": "`+prompt+`", "max_tokens": 12, "temperature": 0}`)
	if code != 200 {
		t.Fatalf("%d %v", code, out)
	}
	if got, want := text(t, out), greedyText(t, prompt, 12); got != want {
		t.Fatalf("got %q, want the engine's greedy %q", got, want)
	}
	u := out["usage"].(map[string]any)
	if u["completion_tokens"].(float64) != 12 || u["prompt_tokens"].(float64) != 5 || u["kv_tokens_peak"].(float64) < u["kv_tokens_mean"].(float64) {
		t.Fatalf("usage %v", u)
	}
}

func TestStreamingEqualsWhole(t *testing.T) {
	ts, _ := start(t, Config{})
	for _, chat := range []bool{false, true} {
		url, field := ts.URL+"/v1/completions", `"prompt": "The cat"`
		if chat {
			url, field = ts.URL+"/v1/chat/completions", `"messages": [{"role": "user", "content": "The cat"}]`
		}
		body := `{` + field + `, "max_tokens": 20, "temperature": 0.9, "top_p": 0.9, "seed": 5`
		_, whole := post(t, url, body+`}`)
		resp, err := http.Post(url, "application/json", strings.NewReader(body+`, "stream": true, "stream_options": {"include_usage": true}}`))
		if err != nil {
			t.Fatal(err)
		}
		events := sse(t, resp)
		var b strings.Builder
		for i, ev := range events[:len(events)-1] {
			ch := ev["choices"].([]any)[0].(map[string]any)
			if chat {
				d := ch["delta"].(map[string]any)
				if i == 0 && d["role"] != "assistant" {
					t.Fatalf("first chat chunk %v has no assistant role", ev)
				}
				if c, ok := d["content"].(string); ok {
					b.WriteString(c)
				}
			} else {
				b.WriteString(ch["text"].(string))
			}
			if _, ok := ev["usage"]; !ok || ev["usage"] != nil {
				t.Fatalf("with include_usage every chunk has usage: null: %v", ev)
			}
		}
		last := events[len(events)-1]
		if len(last["choices"].([]any)) != 0 || last["usage"].(map[string]any)["completion_tokens"].(float64) != 20 {
			t.Fatalf("last event %v should be the usage", last)
		}
		fin := events[len(events)-2]["choices"].([]any)[0].(map[string]any)["finish_reason"]
		if b.String() != text(t, whole) || fin != "length" {
			t.Fatalf("chat=%v: streamed %q (finish %v), whole %q", chat, b.String(), fin, text(t, whole))
		}
	}
}

func TestSeedAndStop(t *testing.T) {
	ts, _ := start(t, Config{})
	body := `{"prompt": "Hello", "max_tokens": 24, "temperature": 1, "seed": 42}`
	_, a := post(t, ts.URL+"/v1/completions", body)
	_, b := post(t, ts.URL+"/v1/completions", body)
	if text(t, a) != text(t, b) {
		t.Fatalf("seed 42 twice: %q vs %q", text(t, a), text(t, b))
	}
	_, c := post(t, ts.URL+"/v1/completions", strings.Replace(body, "42", "43", 1))
	if text(t, a) == text(t, c) {
		t.Fatalf("seeds 42 and 43 gave the same text %q", text(t, a))
	}
	// A stop string from the middle of the greedy text.
	full := greedyText(t, "Hello", 24)
	stop := full[len(full)/2 : len(full)/2+2]
	sb, _ := json.Marshal(stop)
	_, d := post(t, ts.URL+"/v1/completions", `{"prompt": "Hello", "max_tokens": 24, "temperature": 0, "stop": ["zzzz", `+string(sb)+`]}`)
	want := full[:strings.Index(full, stop)]
	fin := d["choices"].([]any)[0].(map[string]any)["finish_reason"]
	if text(t, d) != want || fin != "stop" {
		t.Fatalf("stop %q: got %q (%v), want %q", stop, text(t, d), fin, want)
	}
}

// Concurrent requests, batched or on slots of their own, give each the text
// it gets alone: greedy ones the engine's greedy decoding, seeded sampled
// ones (each with other settings) what the same request gets by itself on
// a server of one slot.
func TestConcurrentRequests(t *testing.T) {
	prompts := []string{"One", "Two birds", "Three little pigs", "Four", "Five and six", "Seven"}
	sampled := func(i int) string {
		return fmt.Sprintf(`"temperature": %.1f, "top_p": 0.95, "top_k": %d, "seed": %d, "frequency_penalty": 0.5`, 0.6+0.2*float64(i), 10*i, 100+i)
	}
	body := func(i int, greedy bool) string {
		settings := `"temperature": 0`
		if !greedy {
			settings = sampled(i)
		}
		return fmt.Sprintf(`{"prompt": %q, "max_tokens": 16, %s}`, prompts[i], settings)
	}
	alone, _ := start(t, Config{Slots: 1})
	wantSampled := make([]string, len(prompts))
	for i := range prompts {
		code, out := post(t, alone.URL+"/v1/completions", body(i, false))
		if code != 200 {
			t.Fatalf("alone: %d %v", code, out)
		}
		wantSampled[i] = text(t, out)
	}
	for _, independent := range []bool{false, true} {
		ts, _ := start(t, Config{Slots: 3, MaxQueue: 16, Independent: independent})
		var wg sync.WaitGroup
		got := make([]string, 2*len(prompts))
		errs := make([]error, 2*len(prompts))
		for j := range got {
			i, greedy := j/2, j%2 == 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(body(i, greedy)))
				if err != nil {
					errs[j] = err
					return
				}
				defer resp.Body.Close()
				var out map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
					errs[j] = fmt.Errorf("status %d, %v, %v", resp.StatusCode, out, err)
					return
				}
				got[j] = out["choices"].([]any)[0].(map[string]any)["text"].(string)
			}()
		}
		wg.Wait()
		for j, g := range got {
			i, greedy := j/2, j%2 == 0
			if errs[j] != nil {
				t.Fatal(errs[j])
			}
			want := wantSampled[i]
			if greedy {
				want = greedyText(t, prompts[i], 16)
			}
			if g != want {
				t.Errorf("independent=%v, %q (greedy %v): concurrent %q, alone %q", independent, prompts[i], greedy, g, want)
			}
		}
	}
	if wantSampled[0] == greedyText(t, prompts[0], 16) {
		t.Errorf("sampling at temperature 0.6 gave the greedy text %q: the check above compares nothing", wantSampled[0])
	}
}

// gated is a batch pool whose jobs wait at their first token until
// released: it holds slots busy for as long as a test needs.
type gated struct {
	*Pool
	release chan struct{}
	running chan struct{} // one send per job that reached its first token
}

func (g *gated) Run(ctx context.Context, job Job) (Outcome, error) {
	inner := job.OnEvent
	first := true
	job.OnEvent = func(ev textgen.Event) error {
		if first {
			first = false
			g.running <- struct{}{}
			select {
			case <-g.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if inner != nil {
			return inner(ev)
		}
		return nil
	}
	return g.Pool.Run(ctx, job)
}

func newGated(t *testing.T, slots, queue int) *gated {
	e, tok := model(t)
	return &gated{Pool: NewBatchPool(e, tok, slots, queue), release: make(chan struct{}), running: make(chan struct{}, 16)}
}

func TestQueueFullIs429(t *testing.T) {
	g := newGated(t, 1, 1)
	ts, _ := start(t, Config{Scheduler: g})
	body := `{"prompt": "Hi", "max_tokens": 2}`
	results := make(chan int, 2)
	go func() { c, _ := post(t, ts.URL+"/v1/completions", body); results <- c }()
	<-g.running // the slot is taken
	go func() { c, _ := post(t, ts.URL+"/v1/completions", body); results <- c }()
	waitFor(t, func() bool { return g.Load().Queued == 1 })
	code, out := post(t, ts.URL+"/v1/completions", body)
	if code != http.StatusTooManyRequests || out["error"].(map[string]any)["code"] != "rate_limit_exceeded" {
		t.Fatalf("third request: %d %v, want 429", code, out)
	}
	close(g.release)
	if a, b := <-results, <-results; a != 200 || b != 200 {
		t.Fatalf("queued requests: %d, %d", a, b)
	}
}

// A client that goes away frees its slot at once (queued or running).
func TestDisconnectFreesSlot(t *testing.T) {
	g := newGated(t, 1, 4)
	ts, s := start(t, Config{Scheduler: g})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions", strings.NewReader(`{"prompt": "Hi", "max_tokens": 500, "stream": true}`))
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-g.running
	if l := s.sched.Load(); l.Busy != 1 {
		t.Fatalf("load %+v, want one busy slot", l)
	}
	cancel()
	waitFor(t, func() bool { return s.sched.Load().Busy == 0 })
	// The slot serves the next request.
	go func() { <-g.running; g.release <- struct{}{} }()
	if code, out := post(t, ts.URL+"/v1/completions", `{"prompt": "Hi", "max_tokens": 3}`); code != 200 {
		t.Fatalf("after the disconnect: %d %v", code, out)
	}
}

func TestTimeout(t *testing.T) {
	g := newGated(t, 1, 1)
	ts, _ := start(t, Config{Scheduler: g, RequestTimeout: 200 * time.Millisecond})
	code, out := post(t, ts.URL+"/v1/completions", `{"prompt": "Hi", "max_tokens": 3}`)
	if code != http.StatusGatewayTimeout {
		t.Fatalf("%d %v, want 504", code, out)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBadRequests(t *testing.T) {
	ts, _ := start(t, Config{MaxBodyBytes: 64 << 10})
	long := strings.Repeat("1, ", 4096) + "1"
	cases := []struct {
		path, body string
		code       int
		param      string
	}{
		{"/v1/completions", `{"prompt": "x"`, 400, ""},
		{"/v1/completions", `[1, 2]`, 400, ""},
		{"/v1/completions", `{"prompt": "x", "max_tokens": "8"}`, 400, "max_tokens"},
		{"/v1/completions", `{"prompt": "x", "max_tokens": 0}`, 400, "max_tokens"},
		{"/v1/completions", `{"prompt": "x", "max_tokens": 5000}`, 400, "max_tokens"},
		{"/v1/completions", `{"prompt": "x", "max_tokens": 2.5}`, 400, "max_tokens"},
		{"/v1/completions", `{"prompt": [` + long + `]}`, 400, "prompt"},
		{"/v1/completions", `{"prompt": [1, 99999]}`, 400, "prompt[1]"},
		{"/v1/completions", `{"prompt": 5}`, 400, "prompt"},
		{"/v1/completions", `{}`, 400, "prompt"},
		{"/v1/completions", `{"prompt": "x", "temperature": "hot"}`, 400, "temperature"},
		{"/v1/completions", `{"prompt": "x", "temperature": 3}`, 400, "temperature"},
		{"/v1/completions", `{"prompt": "x", "top_p": -1}`, 400, "top_p"},
		{"/v1/completions", `{"prompt": "x", "top_p": 0}`, 400, "top_p"},
		{"/v1/completions", `{"prompt": "x", "logprobs": 9}`, 400, "logprobs"},
		{"/v1/completions", `{"prompt": "x", "stop": 3}`, 400, "stop"},
		{"/v1/completions", `{"prompt": "x", "stop": ["a","b","c","d","e"]}`, 400, "stop"},
		{"/v1/completions", `{"prompt": "x", "n": 2}`, 400, "n"},
		{"/v1/completions", `{"prompt": "x", "memory": "lru"}`, 400, "memory"},
		{"/v1/completions", `{"prompt": "x", "memory": "namm:/etc/passwd"}`, 400, "memory"},
		{"/v1/completions", `{"prompt": "x", "memory": "h2o"}`, 400, "memory"},
		{"/v1/completions", `{"prompt": "x", "memory": "full", "kv_budget": 64}`, 400, "kv_budget"},
		{"/v1/completions", `{"prompt": "x", "kv_budget": -3}`, 400, "kv_budget"},
		{"/v1/completions", `{"prompt": "x", "model": "gpt-4"}`, 404, "model"},
		{"/v1/completions", `{"prompt": "x", "stream_options": {"include_usage": 1}}`, 400, "stream_options.include_usage"},
		{"/v1/chat/completions", `{"messages": "hi"}`, 400, "messages"},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 9999}`, 400, "max_completion_tokens"},
		{"/v1/chat/completions", `{"messages": []}`, 400, "messages"},
		{"/v1/chat/completions", `{"messages": [{"content": "hi"}]}`, 400, "messages[0].role"},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": 7}]}`, 400, "messages[0].content"},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}`, 400, "messages[0].content[0].type"},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3}`, 400, "top_logprobs"},
		{"/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 30}`, 400, "top_logprobs"},
		{"/v1/completions", `{"prompt": "` + strings.Repeat("x", 70<<10) + `"}`, 413, ""},
	}
	for _, c := range cases {
		code, out := post(t, ts.URL+c.path, c.body)
		e, _ := out["error"].(map[string]any)
		param, _ := e["param"].(string)
		if code != c.code || e == nil || param != c.param || e["message"] == "" {
			b := c.body
			if len(b) > 80 {
				b = b[:80] + "..."
			}
			t.Errorf("%s %s: %d %v; want %d naming %q", c.path, b, code, out, c.code, c.param)
		}
	}
	resp, err := http.Get(ts.URL + "/v1/completions")
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/completions: %v %v", resp.StatusCode, err)
	}
}

func TestAPIKey(t *testing.T) {
	ts, _ := start(t, Config{APIKey: "s3cret"})
	do := func(path, key string) int {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b, c, d := do("/v1/models", ""), do("/v1/models", "wrong"), do("/v1/models", "s3cret"), do("/health", ""); a != 401 || b != 401 || c != 200 || d != 200 {
		t.Fatalf("no key %d, wrong key %d, right key %d, health %d", a, b, c, d)
	}
	if do("/metrics", "") != 401 {
		t.Fatal("/metrics without the key")
	}
}

func TestLogprobsAndMetrics(t *testing.T) {
	ts, _ := start(t, Config{})
	_, out := post(t, ts.URL+"/v1/chat/completions", `{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0, "logprobs": true, "top_logprobs": 3}`)
	lp := out["choices"].([]any)[0].(map[string]any)["logprobs"].(map[string]any)["content"].([]any)
	if len(lp) != 4 {
		t.Fatalf("%d logprobs, want 4", len(lp))
	}
	for _, x := range lp {
		c := x.(map[string]any)
		top := c["top_logprobs"].([]any)
		// Greedy: the chosen token is the most likely one.
		if len(top) != 3 || top[0].(map[string]any)["logprob"] != c["logprob"] || c["logprob"].(float64) > 0 {
			t.Fatalf("logprob entry %v", c)
		}
	}
	// H2O at a budget evicts; the metrics count it.
	_, out = post(t, ts.URL+"/v1/completions", `{"prompt": "`+strings.Repeat("word ", 40)+`", "max_tokens": 8, "memory": "h2o", "kv_budget": 16}`)
	if out["memory"] == "full" || out["usage"].(map[string]any)["kv_tokens_peak"].(float64) > 16+1 {
		t.Fatalf("h2o at 16: %v", out)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`namm_requests_total{code="200",endpoint="chat"} 1`, "namm_generated_tokens_total 12", "namm_slots 4"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if bytes.Contains(body, []byte("namm_kv_tokens_evicted_total 0\n")) {
		t.Errorf("h2o at budget 16 over 40+ tokens evicted nothing:\n%s", body)
	}
}
