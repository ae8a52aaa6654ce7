package chat

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// TestGolden renders every committed template x conversation and compares
// with testdata/golden.json, made by scripts/gpu/chat_template_golden.py
// (transformers' apply_chat_template, or Jinja2 configured as transformers
// configures it: the file's "engine" says which).
func TestGolden(t *testing.T) {
	var specs map[string]struct {
		File     string  `json:"file"`
		BOSToken *string `json:"bos_token"`
		EOSToken *string `json:"eos_token"`
	}
	readJSON(t, "testdata/templates.json", &specs)
	var golden struct {
		Engine string `json:"engine"`
		Cases  []struct {
			Template     string  `json:"template"`
			Conversation string  `json:"conversation"`
			Text         *string `json:"text"`
			Error        *string `json:"error"`
		} `json:"cases"`
	}
	readJSON(t, "testdata/golden.json", &golden)
	t.Logf("goldens by %s", golden.Engine)
	raw, err := os.ReadFile("testdata/conversations.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	root := v.(*exec.Dict)
	kwargs := map[string]any{}
	for _, p := range root.Get(exec.AsValue("kwargs")).Interface().(*exec.Dict).Pairs {
		kwargs[p.Key.String()] = p.Value.Interface()
	}
	convs := root.Get(exec.AsValue("conversations")).Interface().(*exec.Dict)

	templates := map[string]*Template{}
	for name, s := range specs {
		src, err := os.ReadFile(filepath.Join("testdata", s.File))
		if err != nil {
			t.Fatal(err)
		}
		special := map[string]string{}
		if s.BOSToken != nil {
			special["bos_token"] = *s.BOSToken
		}
		if s.EOSToken != nil {
			special["eos_token"] = *s.EOSToken
		}
		if templates[name], err = New(string(src), special); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if len(golden.Cases) < len(specs)*len(convs.Pairs) {
		t.Fatalf("golden.json has %d cases, want %d", len(golden.Cases), len(specs)*len(convs.Pairs))
	}
	for _, c := range golden.Cases {
		t.Run(c.Template+"/"+c.Conversation, func(t *testing.T) {
			conv := convs.Get(exec.AsValue(c.Conversation)).Interface().(*exec.Dict)
			messages := conv.Get(exec.AsValue("messages")).Interface().([]any)
			var tools []any
			if tv := conv.Get(exec.AsValue("tools")); !tv.IsNil() {
				tools = tv.Interface().([]any)
			}
			addGen := true
			if g := conv.Get(exec.AsValue("add_generation_prompt")); !g.IsNil() {
				addGen = g.Bool()
			}
			got, err := templates[c.Template].Render(messages, tools, addGen, kwargs)
			if c.Error != nil {
				var te *TemplateError
				if !errors.As(err, &te) || te.Message != *c.Error {
					t.Fatalf("want the template's error %q, got %q, %v", *c.Error, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != *c.Text {
				t.Errorf("rendering differs\n got: %q\nwant: %q", got, *c.Text)
			}
		})
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestGoldenSnippets renders small templates that each exercise one Jinja
// feature chat templates use (namespace, loop controls, string and dict
// methods, filters, slices, macros, whitespace control, tojson) and compares
// with the same golden file.
func TestGoldenSnippets(t *testing.T) {
	var golden struct {
		Snippets []struct {
			Source string  `json:"source"`
			Text   *string `json:"text"`
		} `json:"snippets"`
	}
	readJSON(t, "testdata/golden.json", &golden)
	raw, err := os.ReadFile("testdata/snippets.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := DecodeJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	messages := v.(*exec.Dict).Get(exec.AsValue("messages")).Interface().([]any)
	if len(golden.Snippets) == 0 {
		t.Fatal("golden.json has no snippets")
	}
	for i, c := range golden.Snippets {
		tpl, err := New(c.Source, nil)
		if err != nil {
			t.Errorf("%d %s: %v", i, c.Source, err)
			continue
		}
		got, err := tpl.Render(messages, nil, true, nil)
		if c.Text == nil {
			if err == nil {
				t.Errorf("%d %s: rendered %q, want an error", i, c.Source, got)
			}
			continue
		}
		if err != nil || got != *c.Text {
			t.Errorf("%d %s:\n got %q, %v\nwant %q", i, c.Source, got, err, *c.Text)
		}
	}
}
