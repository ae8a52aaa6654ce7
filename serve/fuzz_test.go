package serve

import (
	"strings"
	"testing"

	"github.com/namm-dev/namm/chat"
)

// FuzzDecodeRequest: any body either decodes to a request within the
// documented ranges or gets an error with a status and a message; nothing
// panics. Run with go test -fuzz=FuzzDecodeRequest ./serve.
func FuzzDecodeRequest(f *testing.F) {
	seeds := []string{
		`{"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0.7, "stop": ["\n"], "seed": 3}`,
		`{"prompt": [1, 2, 3], "logprobs": 2, "stream": true, "stream_options": {"include_usage": true}}`,
		`{"prompt": [[5, 6]], "memory": "h2o", "kv_budget": 128, "top_k": 40, "min_p": 0.05}`,
		`{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_completion_tokens": 8}`,
		`{"messages": [{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}], "tools": [{"type": "function"}], "logprobs": true, "top_logprobs": 2}`,
		`{"prompt": "x", "max_tokens": 1e400}`, `{"prompt": "x", "seed": -1}`, `{"prompt": "x", "stop": null}`,
		`{"messages": [{"role": 1}]}`, `{"prompt": ["a", "b"]}`, `null`, `[]`, `"x"`, `{"prompt": "\ud800"}`, ``,
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	fallback, err := chat.New(FallbackTemplate, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, isChat bool) {
		r, e := decodeRequest(body, isChat)
		if e != nil {
			if r != nil || e.Status < 400 || e.Status >= 500 || e.Message == "" {
				t.Fatalf("bad error: %+v (request %v)", e, r)
			}
			if e.Param != "" && !strings.HasPrefix(e.Message, e.Param+":") {
				t.Fatalf("the message %q does not start with the field %q", e.Message, e.Param)
			}
			return
		}
		switch {
		case isChat && len(r.Messages) == 0:
			t.Fatal("a chat request without messages")
		case !isChat && r.Prompt == "" && len(r.PromptIDs) == 0:
			t.Fatal("a completion request without a prompt")
		case r.MaxTokens < 0, len(r.Stop) > maxStops, r.KVBudget < 0:
			t.Fatalf("out of range: %+v", r)
		}
		// Rendering the messages through a template must not panic either.
		if isChat {
			if _, err := fallback.Render(r.Messages, r.Tools, true, nil); err != nil && err.Error() == "" {
				t.Fatal("empty error")
			}
		}
	})
}
