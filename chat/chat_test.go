package chat

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Python's json.dumps output for each value, checked with CPython 3.11.
func TestPyJSON(t *testing.T) {
	floats := map[float64]string{1: "1.0", 0.1: "0.1", 1e16: "1e+16", 1.5e-5: "1.5e-05",
		123456.789: "123456.789", -0.0001: "-0.0001", 2.5e20: "2.5e+20", 3e15: "3000000000000000.0"}
	for f, want := range floats {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", f, got, want)
		}
	}
	v, err := DecodeJSON([]byte(`{"z": 1, "a": "é\"\\\n\u0001<&>", "l": [true, null, 2.5], "e": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := pyJSON(&b, v, 0, 0); err != nil {
		t.Fatal(err)
	}
	want := `{"z": 1, "a": "é\"\\\n\u0001<&>", "l": [true, null, 2.5], "e": {}}`
	if b.String() != want {
		t.Errorf("got  %s\nwant %s", b.String(), want)
	}
}

func TestStrftime(t *testing.T) {
	at := time.Date(2024, 7, 6, 9, 5, 3, 0, time.UTC)
	if got := strftime(at, "%d %b %Y, %A %H:%M:%S %%"); got != "06 Jul 2024, Saturday 09:05:03 %" {
		t.Errorf("got %q", got)
	}
	tpl, err := New(`{{ strftime_now("%d %B %Y") }}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	tpl.Now = func() time.Time { return at }
	if got, err := tpl.Render(nil, nil, false, nil); err != nil || got != "06 July 2024" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadDir(dir); !errors.Is(err, ErrNoTemplate) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("empty directory: %v", err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tokenizer_config.json", `{"bos_token": {"content": "<s>"}, "eos_token": "</s>",
		"chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]}`)
	msgs, _ := DecodeJSON([]byte(`[{"role": "user", "content": "hi"}]`))
	tpl, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tpl.Render(msgs.([]any), nil, true, nil); got != "<s>hi</s>" {
		t.Errorf("named default template: got %q", got)
	}
	write("chat_template.jinja", "[{{ messages[0]['content'] }}]")
	if tpl, err = LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := tpl.Render(msgs.([]any), nil, true, nil); got != "[hi]" {
		t.Errorf("chat_template.jinja should win: got %q", got)
	}
	if tpl, err = LoadDirWith(dir, "{{ eos_token }}{{ messages[0].content }}"); err != nil {
		t.Fatal(err)
	}
	if got, _ := tpl.Render(msgs.([]any), nil, true, nil); got != "</s>hi" {
		t.Errorf("a given template with the directory's tokens: got %q", got)
	}
	write("tokenizer_config.json", `{"chat_template": 3}`)
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json: chat_template") {
		t.Errorf("bad chat_template: %v", err)
	}
	if _, err := New("{% for x in %}", nil); err == nil {
		t.Error("a syntax error compiled")
	}
}
