package serve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/namm-dev/namm/chat"
	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/tokenizer"
)

// A chat request's prompt is the model's template rendered (as the
// committed golden rendering of chat/testdata says) and tokenised without an
// added BOS.
func TestChatUsesTheModelsTemplate(t *testing.T) {
	src := "../testdata/models/tiny-qwen2"
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} {
		abs, _ := filepath.Abs(filepath.Join(src, f))
		if err := os.Symlink(abs, filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := os.ReadFile("../chat/testdata/templates/qwen2.jinja")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"eos_token": "<|endoftext|>", "chat_template": string(tmpl)})
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []struct{ Template, Conversation, Text string }
	}
	data, err := os.ReadFile("../chat/testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	golden := map[string]string{}
	for _, c := range g.Cases {
		golden[c.Template+"/"+c.Conversation] = c.Text
	}
	want := golden["qwen2/system_user"]
	if want == "" {
		t.Fatal("no golden rendering of qwen2/system_user")
	}

	e, err := engine.Load(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := chat.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{ModelID: "qwen", Engine: e, Tokenizer: tok, Template: ct})
	if err != nil {
		t.Fatal(err)
	}
	p, apiErr := s.prepare(mustDecode(t, `{"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}], "max_tokens": 6}`))
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	ids := tok.Encode(want, false)
	if !slices.Equal(p.job.Request.Prompt, ids) {
		t.Fatalf("prompt ids %v, want the golden rendering's %v", p.job.Request.Prompt, ids)
	}
	// add_generation_prompt: false renders the chat as it ends.
	p, apiErr = s.prepare(mustDecode(t, `{"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."}], "add_generation_prompt": false}`))
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	if ids := tok.Encode(golden["qwen2/ends_with_assistant"], false); !slices.Equal(p.job.Request.Prompt, ids) {
		t.Fatalf("without the generation prompt: %v, want %v", p.job.Request.Prompt, ids)
	}
}

func mustDecode(t *testing.T, body string) *request {
	t.Helper()
	r, e := decodeRequest([]byte(body), true)
	if e != nil {
		t.Fatal(e)
	}
	return r
}
