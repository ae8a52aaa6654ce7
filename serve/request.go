package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"

	"github.com/namm-dev/namm/chat"
)

// request is a decoded /v1/completions or /v1/chat/completions body. Only
// the fields namm uses are kept; others are ignored, as OpenAI's own
// server ignores fields a client library adds.
type request struct {
	Chat  bool
	Model string
	// Completions: a text prompt, or token ids.
	Prompt    string
	PromptIDs []int
	// Chat: messages as ordered dicts (chat.DecodeJSON) with string
	// content, and tools, for the template.
	Messages []any
	Tools    []any
	// AddGenerationPrompt (extension, default true, as vLLM's) ends the
	// rendered chat with the assistant's header; false continues the last
	// message instead.
	AddGenerationPrompt bool

	MaxTokens      int    // 0: the default
	MaxTokensField string // the field that set it (max_tokens or max_completion_tokens)
	Temperature    float64
	TopP           float64
	TopK           int
	MinP           float64
	Seed           *uint64
	Frequency      float64
	Presence       float64
	Stop           []string
	// Logprobs asks for log probabilities, with TopLogprobs alternatives.
	Logprobs     bool
	TopLogprobs  int
	Stream       bool
	IncludeUsage bool // stream_options.include_usage

	// Extensions: a memory policy spec and its budget.
	Memory   string
	KVBudget int
}

// maxStops is OpenAI's limit on stop strings.
const maxStops = 4

// fields are a JSON object's members, decoded on demand so that an error
// names the member at fault. A null member counts as absent.
type fields map[string]json.RawMessage

func (f fields) has(name string) bool {
	raw, ok := f[name]
	return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func (f fields) str(name string, dst *string) *apiError {
	if !f.has(name) {
		return nil
	}
	if json.Unmarshal(f[name], dst) != nil {
		return badField(name, "must be a string")
	}
	return nil
}

func (f fields) boolean(name string, dst *bool) *apiError {
	if !f.has(name) {
		return nil
	}
	if json.Unmarshal(f[name], dst) != nil {
		return badField(name, "must be a boolean")
	}
	return nil
}

func (f fields) number(name string, dst *float64) *apiError {
	if !f.has(name) {
		return nil
	}
	if json.Unmarshal(f[name], dst) != nil {
		return badField(name, "must be a number")
	}
	return nil
}

// integer accepts JSON numbers with an integral value (16 or 16.0).
func (f fields) integer(name string, dst *int) *apiError {
	if !f.has(name) {
		return nil
	}
	v, ok := integral(f[name])
	if !ok || v < math.MinInt32 || v > math.MaxInt32 {
		return badField(name, "must be an integer")
	}
	*dst = int(v)
	return nil
}

func integral(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	// json.Number also takes a quoted number: "8" is a string, not 8.
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, false
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// decodeRequest parses and checks a request body; the error names the
// field at fault. chat selects the chat completions schema.
func decodeRequest(body []byte, isChat bool) (*request, *apiError) {
	var f fields
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, badRequest("the body is not a JSON object: %v", err)
	}
	if f == nil {
		return nil, badRequest("the body is not a JSON object")
	}
	r := &request{Chat: isChat, Temperature: 1, TopP: 1}
	for _, e := range []*apiError{
		f.str("model", &r.Model),
		f.number("temperature", &r.Temperature),
		f.number("top_p", &r.TopP),
		f.integer("top_k", &r.TopK),
		f.number("min_p", &r.MinP),
		f.number("frequency_penalty", &r.Frequency),
		f.number("presence_penalty", &r.Presence),
		f.boolean("stream", &r.Stream),
		f.str("memory", &r.Memory),
		f.integer("kv_budget", &r.KVBudget),
	} {
		if e != nil {
			return nil, e
		}
	}
	if f.has("top_p") && r.TopP <= 0 {
		return nil, badField("top_p", "must be in (0, 1], got %v", r.TopP)
	}
	if err := r.decodeLimits(f); err != nil {
		return nil, err
	}
	if f.has("seed") {
		v, ok := integral(f["seed"])
		if !ok {
			return nil, badField("seed", "must be an integer")
		}
		s := uint64(v)
		r.Seed = &s
	}
	if err := r.decodeStop(f); err != nil {
		return nil, err
	}
	if f.has("stream_options") {
		var so fields
		if json.Unmarshal(f["stream_options"], &so) != nil || so == nil {
			return nil, badField("stream_options", "must be an object")
		}
		if e := so.boolean("include_usage", &r.IncludeUsage); e != nil {
			e.Param, e.Message = "stream_options.include_usage", "stream_options."+e.Message
			return nil, e
		}
	}
	if f.has("n") {
		var n int
		if e := f.integer("n", &n); e != nil {
			return nil, e
		}
		if n != 1 {
			return nil, badField("n", "only n=1 is supported, got %d", n)
		}
	}
	if f.has("kv_budget") && r.KVBudget <= 0 {
		return nil, badField("kv_budget", "must be > 0, got %d", r.KVBudget)
	}
	if isChat {
		if err := r.decodeChat(f); err != nil {
			return nil, err
		}
	} else if err := r.decodeCompletion(f); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *request) decodeLimits(f fields) *apiError {
	name := "max_tokens"
	if r.Chat && f.has("max_completion_tokens") {
		name = "max_completion_tokens"
	}
	r.MaxTokensField = name
	if f.has(name) {
		if e := f.integer(name, &r.MaxTokens); e != nil {
			return e
		}
		if r.MaxTokens < 1 {
			return badField(name, "must be >= 1, got %d", r.MaxTokens)
		}
	}
	return nil
}

func (r *request) decodeStop(f fields) *apiError {
	if !f.has("stop") {
		return nil
	}
	var one string
	if json.Unmarshal(f["stop"], &one) == nil {
		r.Stop = []string{one}
		return nil
	}
	if json.Unmarshal(f["stop"], &r.Stop) != nil {
		return badField("stop", "must be a string or an array of strings")
	}
	if len(r.Stop) > maxStops {
		return badField("stop", "at most %d stop strings, got %d", maxStops, len(r.Stop))
	}
	return nil
}

func (r *request) decodeCompletion(f fields) *apiError {
	if !f.has("prompt") {
		return badField("prompt", "is required")
	}
	raw := f["prompt"]
	var text string
	var texts []string
	var ids []int
	var idLists [][]int
	switch {
	case json.Unmarshal(raw, &text) == nil:
		r.Prompt = text
	case json.Unmarshal(raw, &texts) == nil && len(texts) == 1:
		r.Prompt = texts[0]
	case json.Unmarshal(raw, &ids) == nil && len(ids) > 0:
		r.PromptIDs = ids
	case json.Unmarshal(raw, &idLists) == nil && len(idLists) == 1 && len(idLists[0]) > 0:
		r.PromptIDs = idLists[0]
	case json.Unmarshal(raw, &texts) == nil || json.Unmarshal(raw, &idLists) == nil:
		return badField("prompt", "exactly one prompt per request is supported")
	default:
		return badField("prompt", "must be a string, an array of token ids, or an array of one of these")
	}
	if r.PromptIDs == nil && r.Prompt == "" {
		return badField("prompt", "is empty")
	}
	if f.has("logprobs") {
		if e := f.integer("logprobs", &r.TopLogprobs); e != nil {
			return e
		}
		if r.TopLogprobs < 0 || r.TopLogprobs > 5 {
			return badField("logprobs", "must be in [0, 5], got %d", r.TopLogprobs)
		}
		r.Logprobs = true
	}
	var echo bool
	if e := f.boolean("echo", &echo); e != nil {
		return e
	}
	if echo {
		return badField("echo", "is not supported")
	}
	var suffix string
	if e := f.str("suffix", &suffix); e != nil {
		return e
	}
	if suffix != "" {
		return badField("suffix", "is not supported")
	}
	return nil
}

func (r *request) decodeChat(f fields) *apiError {
	if !f.has("messages") {
		return badField("messages", "is required")
	}
	v, err := chat.DecodeJSON(f["messages"])
	list, ok := v.([]any)
	if err != nil || !ok {
		return badField("messages", "must be an array of messages")
	}
	if len(list) == 0 {
		return badField("messages", "is empty")
	}
	for i, m := range list {
		d, ok := m.(*exec.Dict)
		if !ok {
			return badField(fmt.Sprintf("messages[%d]", i), "must be an object")
		}
		role, _ := d.Get(exec.AsValue("role")).Interface().(string)
		if role == "" {
			return badField(fmt.Sprintf("messages[%d].role", i), "must be a non-empty string")
		}
		content, e := messageContent(d.Get(exec.AsValue("content")), i)
		if e != nil {
			return e
		}
		setMember(d, "content", content)
	}
	r.Messages = list
	if f.has("tools") {
		v, err := chat.DecodeJSON(f["tools"])
		tools, ok := v.([]any)
		if err != nil || !ok {
			return badField("tools", "must be an array")
		}
		r.Tools = tools
	}
	r.AddGenerationPrompt = true
	if e := f.boolean("add_generation_prompt", &r.AddGenerationPrompt); e != nil {
		return e
	}
	if e := f.boolean("logprobs", &r.Logprobs); e != nil {
		return e
	}
	if e := f.integer("top_logprobs", &r.TopLogprobs); e != nil {
		return e
	}
	if r.TopLogprobs != 0 && !r.Logprobs {
		return badField("top_logprobs", "needs logprobs: true")
	}
	return nil
}

// messageContent turns a message's content into text: a string, null (an
// assistant message with tool calls), or an array of text parts, joined
// with newlines as vLLM joins them.
func messageContent(v *exec.Value, i int) (any, *apiError) {
	field := fmt.Sprintf("messages[%d].content", i)
	if v == nil || v.IsNil() {
		return "", nil
	}
	switch c := v.Interface().(type) {
	case string:
		return c, nil
	case []any:
		var parts []string
		for j, p := range c {
			d, ok := p.(*exec.Dict)
			if !ok {
				return nil, badField(fmt.Sprintf("%s[%d]", field, j), "must be an object")
			}
			typ, _ := d.Get(exec.AsValue("type")).Interface().(string)
			if typ != "text" {
				return nil, badField(fmt.Sprintf("%s[%d].type", field, j), "only \"text\" parts are supported, got %q", typ)
			}
			text, ok := d.Get(exec.AsValue("text")).Interface().(string)
			if !ok {
				return nil, badField(fmt.Sprintf("%s[%d].text", field, j), "must be a string")
			}
			parts = append(parts, text)
		}
		return strings.Join(parts, "\n"), nil
	}
	return nil, badField(field, "must be a string or an array of text parts")
}

func setMember(d *exec.Dict, key string, v any) {
	for _, p := range d.Pairs {
		if s, ok := p.Key.Interface().(string); ok && s == key {
			p.Value = exec.AsValue(v)
			return
		}
	}
	d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(key), Value: exec.AsValue(v)})
}
