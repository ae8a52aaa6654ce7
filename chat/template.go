// Package chat renders a model's chat template (tokenizer_config.json's
// chat_template, Jinja) into the prompt text the model was trained on, as
// transformers' apply_chat_template does.
//
// Templates run on gonja (github.com/nikolalohinski/gonja/v2), a pure-Go
// Jinja, configured as transformers configures Jinja2: trim_blocks,
// lstrip_blocks, raise_exception, strftime_now, and a tojson that writes
// what Python's json.dumps writes (ensure_ascii=False, key order kept).
package chat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// ErrNoTemplate: the model directory has no chat template.
var ErrNoTemplate = errors.New("no chat template")

// TemplateError is an error a template raised itself (raise_exception), such
// as "Conversation roles must alternate": the request's fault, not ours.
type TemplateError struct{ Message string }

func (e *TemplateError) Error() string { return "chat template: " + e.Message }

// Template is a compiled chat template with the special tokens it may print.
type Template struct {
	Source  string
	special map[string]any // bos_token, eos_token, ... as strings
	mu      sync.Mutex     // gonja's evaluator is not documented as safe for concurrent use
	tpl     *exec.Template
	// Now is the clock of strftime_now (time.Now when nil).
	Now func() time.Time
}

// New compiles a template. special maps names such as "bos_token" to the
// token text the template may print.
func New(source string, special map[string]string) (*Template, error) {
	t := &Template{Source: source, special: map[string]any{}}
	for k, v := range special {
		t.special[k] = v
	}
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{})
	filters.Update(builtins.Filters)
	if err := filters.Replace("tojson", toJSONFilter); err != nil {
		return nil, err
	}
	ctx := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	ctx.Set("raise_exception", func(msg string) (string, error) { return "", &TemplateError{Message: msg} })
	ctx.Set("strftime_now", func(format string) string { return strftime(t.now(), format) })
	env := &exec.Environment{
		Context:           ctx,
		Filters:           filters,
		Tests:             builtins.Tests,
		ControlStructures: builtins.ControlStructures,
		Methods:           methods(),
	}
	loader, err := loaders.NewFileSystemLoader("")
	if err != nil {
		return nil, err
	}
	const root = "chat_template"
	shifted, err := loaders.NewShiftedLoader(root, strings.NewReader(source), loader)
	if err != nil {
		return nil, err
	}
	tpl, err := compile(root, cfg, shifted, env)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	t.tpl = tpl
	return t, nil
}

// compile turns gonja's parser panics into errors.
func compile(root string, cfg *config.Config, l loaders.Loader, env *exec.Environment) (tpl *exec.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return exec.NewTemplate(root, cfg, l, env)
}

func (t *Template) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Render renders messages (each an ordered dict, see DecodeJSON, or a
// map[string]any) with tools (nil: none), as
// apply_chat_template(messages, tools=tools, add_generation_prompt=...,
// **kwargs) does.
func (t *Template) Render(messages []any, tools []any, addGenerationPrompt bool, kwargs map[string]any) (out string, err error) {
	data := map[string]any{}
	for k, v := range t.special {
		data[k] = v
	}
	for k, v := range kwargs {
		data[k] = v
	}
	data["messages"] = messages
	data["tools"] = nil
	if tools != nil {
		data["tools"] = tools
	}
	data["documents"] = nil
	data["add_generation_prompt"] = addGenerationPrompt
	t.mu.Lock()
	defer t.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chat template: %v", r)
		}
	}()
	out, err = t.tpl.ExecuteToString(exec.NewContext(data))
	if err != nil {
		var te *TemplateError
		if errors.As(err, &te) {
			return "", te
		}
		if msg, ok := raisedMessage(err); ok {
			return "", &TemplateError{Message: msg}
		}
		return "", fmt.Errorf("chat template: %w", err)
	}
	return out, nil
}

// raisedMessage finds raise_exception's message in an error gonja wrapped
// as text.
func raisedMessage(err error) (string, bool) {
	const mark = "chat template: "
	s := err.Error()
	i := strings.LastIndex(s, mark)
	if i < 0 {
		return "", false
	}
	return s[i+len(mark):], true
}

// LoadDir reads a model directory's chat template: chat_template.jinja if
// present (as transformers saves it), else tokenizer_config.json's
// chat_template (a string, or a list of named templates of which "default"
// is used), with the config's special tokens (bos_token, eos_token, ...).
// It returns ErrNoTemplate (wrapped) when there is none.
func LoadDir(dir string) (*Template, error) {
	return loadDir(dir, "")
}

// LoadDirWith compiles source with dir's special tokens (a template given
// on the command line for a model).
func LoadDirWith(dir, source string) (*Template, error) {
	return loadDir(dir, source)
}

func loadDir(dir, source string) (*Template, error) {
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	special := map[string]string{}
	given := source != ""
	if data, err := os.ReadFile(cfgPath); err == nil {
		v, err := DecodeJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfgPath, err)
		}
		cfg, ok := v.(*exec.Dict)
		if !ok {
			return nil, fmt.Errorf("%s: not a JSON object", cfgPath)
		}
		for _, name := range []string{"bos_token", "eos_token", "unk_token", "pad_token"} {
			s, err := tokenText(cfg.Get(exec.AsValue(name)))
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", cfgPath, name, err)
			}
			if s != "" {
				special[name] = s
			}
		}
		if !given {
			if source, err = templateSource(cfg.Get(exec.AsValue("chat_template"))); err != nil {
				return nil, fmt.Errorf("%s: chat_template: %w", cfgPath, err)
			}
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	if !given {
		jinjaPath := filepath.Join(dir, "chat_template.jinja")
		if data, err := os.ReadFile(jinjaPath); err == nil {
			source = string(data)
		} else if !os.IsNotExist(err) {
			return nil, err
		}
	}
	if source == "" {
		return nil, fmt.Errorf("%s: %w (no chat_template.jinja, no chat_template in tokenizer_config.json)", dir, ErrNoTemplate)
	}
	t, err := New(source, special)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return t, nil
}

// tokenText reads a special token entry: a string, or {"content": ...}.
func tokenText(v *exec.Value) (string, error) {
	if v == nil || v.IsNil() {
		return "", nil
	}
	switch x := v.Interface().(type) {
	case string:
		return x, nil
	case *exec.Dict:
		if c, ok := x.Get(exec.AsValue("content")).Interface().(string); ok {
			return c, nil
		}
	}
	return "", fmt.Errorf("must be a string or an object with a string \"content\"")
}

// templateSource reads chat_template: a string or [{"name", "template"}].
func templateSource(v *exec.Value) (string, error) {
	if v == nil || v.IsNil() {
		return "", nil
	}
	switch x := v.Interface().(type) {
	case string:
		return x, nil
	case []any:
		for _, e := range x {
			d, ok := e.(*exec.Dict)
			if !ok {
				return "", fmt.Errorf("a list entry is not an object")
			}
			if d.Get(exec.AsValue("name")).String() == "default" {
				if s, ok := d.Get(exec.AsValue("template")).Interface().(string); ok {
					return s, nil
				}
				return "", fmt.Errorf("the default entry's template is not a string")
			}
		}
		return "", fmt.Errorf("a list without a \"default\" entry")
	}
	return "", fmt.Errorf("must be a string or a list of {name, template}")
}

// toJSONFilter is transformers' tojson: json.dumps(x, ensure_ascii=False,
// indent=indent).
func toJSONFilter(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	indent := 0
	if v, ok := params.KwArgs["indent"]; ok && !v.IsNil() {
		if !v.IsInteger() {
			return exec.AsValue(fmt.Errorf("tojson: indent must be an integer"))
		}
		indent = v.Integer()
	}
	var b strings.Builder
	if err := pyJSON(&b, in, indent, 0); err != nil {
		return exec.AsValue(err)
	}
	return exec.AsSafeValue(b.String())
}
