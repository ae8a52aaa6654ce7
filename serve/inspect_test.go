package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/namm-dev/namm/inspect"
)

// inspectEvents posts body to /v1/inspect and reads the stream's events.
func inspectEvents(t *testing.T, url, body string) []map[string]json.RawMessage {
	t.Helper()
	resp, err := http.Post(url+"/v1/inspect", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
	}
	var events []map[string]json.RawMessage
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		if sc.Text() == "" {
			continue
		}
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", sc.Text())
		}
		var ev map[string]json.RawMessage
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return events
}

// inspected rebuilds a trace from a stream's events.
func inspected(t *testing.T, events []map[string]json.RawMessage) (inspect.Trace, string) {
	t.Helper()
	var tr inspect.Trace
	pieces := ""
	for i, ev := range events {
		var typ string
		_ = json.Unmarshal(ev["type"], &typ)
		raw, _ := json.Marshal(ev)
		var err error
		switch typ {
		case "start":
			if i != 0 {
				t.Fatalf("start is event %d", i)
			}
			err = json.Unmarshal(raw, &tr.Header)
		case "step":
			var st inspect.Step
			err = json.Unmarshal(raw, &st)
			tr.Steps = append(tr.Steps, st)
		case "token":
			var tok struct {
				inspect.Token
				Piece string `json:"piece"`
			}
			err = json.Unmarshal(raw, &tok)
			tr.Generated = append(tr.Generated, tok.Token)
			pieces += tok.Piece
		case "end":
			if i != len(events)-1 {
				t.Fatalf("end is event %d of %d", i, len(events))
			}
			err = json.Unmarshal(raw, &tr.Summary)
		default:
			t.Fatalf("event %d: %s", i, raw)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return tr, pieces
}

// TestInspectStream: /v1/inspect streams the prompt's tokens, a step per
// pass, the generated tokens (greedy by default: with the full cache, the
// engine's greedy text) and a summary; the kept positions worked out from the streamed steps are
// StreamingLLM's by hand (4 sinks, the most recent tokens) and the
// summary's; the full cache evicts nothing.
func TestInspectStream(t *testing.T) {
	ts, _ := start(t, Config{})
	_, tok := model(t)
	const prompt = "Once upon a time there was a little fox who lived in the forest"
	ids := tok.Encode(prompt, true)
	tr, pieces := inspected(t, inspectEvents(t, ts.URL, `{"prompt": "`+prompt+`", "memory": "streaming", "kv_budget": 8, "max_tokens": 6}`))
	if tr.Format != inspect.Format || tr.Memory != "streaming:budget=8,sinks=4" || tr.Layers != 2 || tr.KVHeads != 2 {
		t.Fatalf("header %+v", tr.Header)
	}
	for i, p := range tr.Prompt {
		if p.Pos != i || p.ID != ids[i] {
			t.Fatalf("prompt token %d: %+v, want id %d", i, p, ids[i])
		}
	}
	if pieces != tr.Summary.Text || pieces == "" {
		t.Fatalf("streamed %q, summary %q", pieces, tr.Summary.Text)
	}
	// One prefill pass (the prompt is shorter than a chunk), then a pass per
	// generated token but the last.
	processed := len(ids) + 5
	if len(tr.Steps) != 6 || tr.Summary.Processed != processed || len(tr.Generated) != 6 {
		t.Fatalf("%d steps, %d processed, %d generated", len(tr.Steps), tr.Summary.Processed, len(tr.Generated))
	}
	want := []int32{0, 1, 2, 3}
	for p := processed - 4; p < processed; p++ {
		want = append(want, int32(p))
	}
	for l, heads := range tr.Kept() {
		for k, h := range heads {
			if !slices.Equal(h, want) {
				t.Fatalf("layer %d head %d keeps %v, want %v", l, k, h, want)
			}
		}
	}
	for _, k := range tr.Summary.Kept {
		if k.Head != nil || !slices.Equal(k.Positions, want) {
			t.Fatalf("summary keeps %+v, want %v", k, want)
		}
	}
	if tr.Summary.Evicted != 2*(processed-8) || tr.Summary.KVPeak != 8 || tr.Summary.FullKVPeak != float64(processed) {
		t.Fatalf("summary %+v", tr.Summary)
	}

	tr, pieces = inspected(t, inspectEvents(t, ts.URL, `{"prompt": "`+prompt+`", "max_tokens": 6}`))
	if want := greedyText(t, prompt, 6); pieces != want || tr.Summary.Text != want {
		t.Fatalf("full cache: streamed %q, summary %q, greedy %q", pieces, tr.Summary.Text, want)
	}
	for _, st := range tr.Steps {
		if len(st.Evicted) > 0 {
			t.Fatalf("full cache: step %d evicts %+v", st.Step, st.Evicted)
		}
	}
	if tr.Memory != "full" || tr.Summary.Evicted != 0 || tr.Summary.KVMean != tr.Summary.FullKVMean {
		t.Fatalf("full cache: %s, summary %+v", tr.Memory, tr.Summary)
	}
}

// TestInspectErrorsAndPage: bad inspect requests get a 400 naming the
// field; the page, its files and the policy list are served.
func TestInspectErrorsAndPage(t *testing.T) {
	ts, _ := start(t, Config{})
	for body, field := range map[string]string{
		`{"prompt": "x", "memory": "bogus"}`:                  "memory",
		`{"prompt": "x", "memory": "h2o"}`:                    "memory",
		`{"prompt": "x", "max_tokens": "8"}`:                  "max_tokens",
		`{"prompt": "x", "memory": "h2o", "kv_budget": -1}`:   "kv_budget",
		`{"memory": "full"}`:                                  "prompt",
		`{"prompt": "x", "memory": "namm:/etc/passwd"}`:       "memory",
		`{"prompt": "x", "max_tokens": 100000, "seed": 1}`:    "max_tokens",
		`{"prompt": "x", "temperature": "hot", "seed": 1}`:    "temperature",
		`{"prompt": "x", "kv_budget": 4, "memory": "full:x"}`: "memory",
	} {
		code, out := post(t, ts.URL+"/v1/inspect", body)
		e, _ := out["error"].(map[string]any)
		if code != 400 || e == nil || e["param"] != field {
			t.Errorf("%s: %d %v, want 400 naming %s", body, code, out, field)
		}
	}
	for path, want := range map[string]string{"/": "memory inspector", "/inspector/app.js": "/v1/inspect", "/inspector/style.css": "--kept"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(data), want) {
			t.Fatalf("GET %s: %d, %d bytes", path, resp.StatusCode, len(data))
		}
	}
	resp, err := http.Get(ts.URL + "/v1/policies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Model    string       `json:"model"`
		Policies []policyInfo `json:"policies"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	budget := map[string]bool{}
	for _, p := range list.Policies {
		budget[p.Name] = p.NeedsBudget
	}
	if list.Model != "tiny-llama" || len(budget) < 9 || !budget["h2o"] || !budget["streaming"] || budget["full"] || budget["namm"] {
		t.Fatalf("policies: %+v", list)
	}
}

// TestInspectDisconnectFreesSlot: a client that leaves an inspect stream
// frees its slot, and the slot serves the next request.
func TestInspectDisconnectFreesSlot(t *testing.T) {
	ts, s := start(t, Config{Slots: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/inspect", strings.NewReader(`{"prompt": "Hi", "max_tokens": 3000}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), `"type":"token"`) {
	}
	if l := s.sched.Load(); l.Busy != 1 {
		t.Fatalf("load %+v, want one busy slot", l)
	}
	cancel()
	resp.Body.Close()
	waitFor(t, func() bool { return s.sched.Load().Busy == 0 })
	tr, _ := inspected(t, inspectEvents(t, ts.URL, `{"prompt": "Hi", "max_tokens": 3}`))
	if len(tr.Generated) != 3 {
		t.Fatalf("after the disconnect: %d tokens", len(tr.Generated))
	}
}
