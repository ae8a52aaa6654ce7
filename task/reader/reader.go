// Package reader reads published long-context benchmark files (LongBench
// v1, InfiniteBench, RULER, ChouBun, and generic JSONL with a prompt
// template) into one Sample type: a ready prompt, its reference answers and
// the metric (a name of package task/metric) that scores it.
//
// Every reader takes JSON Lines: one object per line, blank lines ignored,
// unknown fields ignored. A malformed line is an error "path:LINE: reason",
// or, with Options.SkipBad, a warning and the line is skipped.
package reader

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Sample is one benchmark item ready to run.
type Sample struct {
	ID           string   // the file's id (LongBench _id, InfiniteBench id, RULER index), else "task-LINE"
	Task         string   // dataset / task name, e.g. "hotpotqa", "passkey"
	Prompt       string   // the full prompt, template applied
	Answers      []string // reference answers, at least one
	AllClasses   []string // label set of classification tasks, else nil
	Metric       string   // metric name for task/metric
	MaxNewTokens int      // generation budget of the benchmark for this task
	Length       int      // length field of the file (words or tokens, as the benchmark counts), 0 when absent
	Language     string   // "en", "zh", "ja", ... when known
}

// Options control reading.
type Options struct {
	SkipBad      bool         // skip malformed lines (reported through Warn) instead of failing
	Limit        int          // stop after this many samples; 0 means all
	Warn         func(string) // receives skip warnings; nil discards them
	Metric       string       // metric for tasks without a built-in one (default qa_f1; RULER default contains)
	MaxNewTokens int          // generation budget for tasks without a built-in one (default 64)
}

func (o Options) metric(def string) string {
	if o.Metric != "" {
		return o.Metric
	}
	return def
}

func (o Options) maxNew(def int) int {
	if o.MaxNewTokens > 0 {
		return o.MaxNewTokens
	}
	return def
}

// lineError is a problem with one line; the caller prefixes path:LINE.
type lineError struct{ reason string }

func (e *lineError) Error() string { return e.reason }

func badLine(format string, args ...any) error { return &lineError{fmt.Sprintf(format, args...)} }

// object is one decoded JSONL line.
type object map[string]json.RawMessage

// readJSONL calls parse for every non-blank line of path and collects the
// samples, applying SkipBad and Limit.
func readJSONL(path string, opts Options, parse func(obj object, line int) (Sample, error)) ([]Sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	defer f.Close()
	return parseJSONL(f, path, opts, parse)
}

func parseJSONL(r io.Reader, path string, opts Options, parse func(obj object, line int) (Sample, error)) ([]Sample, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var out []Sample
	for line := 1; ; line++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		eof := err != nil
		if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 {
			s, perr := parseLine(trimmed, line, parse)
			if perr != nil {
				msg := fmt.Sprintf("%s:%d: %v", path, line, perr)
				if !opts.SkipBad {
					return nil, fmt.Errorf("%s:%d: %w", path, line, perr)
				}
				if opts.Warn != nil {
					opts.Warn(msg + " (skipped)")
				}
			} else {
				out = append(out, s)
				if opts.Limit > 0 && len(out) >= opts.Limit {
					return out, nil
				}
			}
		}
		if eof {
			return out, nil
		}
	}
}

func parseLine(raw []byte, line int, parse func(obj object, line int) (Sample, error)) (Sample, error) {
	var obj object
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Sample{}, badLine("not a JSON object: %v", err)
	}
	if obj == nil {
		return Sample{}, badLine("not a JSON object")
	}
	return parse(obj, line)
}

// str returns a required string field.
func (o object) str(name string) (string, error) {
	raw, ok := o[name]
	if !ok {
		return "", badLine("missing field %q", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badLine("field %q: want a string", name)
	}
	return s, nil
}

// optStr returns an optional string field ("" when absent or null).
func (o object) optStr(name string) (string, error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	return o.str(name)
}

// optInt returns an optional integer field (0 when absent or null).
func (o object) optInt(name string) (int, error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return 0, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, badLine("field %q: want an integer", name)
	}
	return n, nil
}

// idField returns an optional id field as text: a string, or a number's JSON text.
func (o object) idField(name string) (string, error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", badLine("field %q: want a string or a number", name)
}

// strList returns a required list of strings; a single string is accepted
// as a one-element list when single is true. An empty list is an error.
func (o object) strList(name string, single bool) ([]string, error) {
	raw, ok := o[name]
	if !ok {
		return nil, badLine("missing field %q", name)
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var s string
		if !single || json.Unmarshal(raw, &s) != nil {
			return nil, badLine("field %q: want a list of strings", name)
		}
		list = []string{s}
	}
	if len(list) == 0 {
		return nil, badLine("field %q: empty answer list", name)
	}
	return list, nil
}

// optStrList returns an optional list of strings (nil when absent or null).
func (o object) optStrList(name string) ([]string, error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badLine("field %q: want a list of strings", name)
	}
	return list, nil
}

// format fills {name} placeholders of template in one pass, as Python's
// str.format does for the names given: text inserted is never re-scanned,
// and "{{" / "}}" stand for literal braces. A placeholder without a value is
// an error naming it.
func format(template string, values map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(template); {
		c := template[i]
		switch {
		case c == '{' && strings.HasPrefix(template[i:], "{{"):
			b.WriteByte('{')
			i += 2
		case c == '}' && strings.HasPrefix(template[i:], "}}"):
			b.WriteByte('}')
			i += 2
		case c == '{':
			end := strings.IndexByte(template[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("template: unclosed '{' at byte %d", i)
			}
			name := template[i+1 : i+end]
			v, ok := values[name]
			if !ok {
				return "", fmt.Errorf("template: no value for placeholder {%s}", name)
			}
			b.WriteString(v)
			i += end + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// taskFromPath is the file name without directory and .jsonl extension.
func taskFromPath(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(strings.TrimSuffix(base, ".jsonl"), ".json")
}

// TruncateMiddle keeps a token sequence within limit the way LongBench's
// pred.py does: a sequence longer than limit keeps its first floor(limit/2)
// and last floor(limit/2) tokens (so an odd limit keeps limit-1 tokens);
// a sequence within limit is returned unchanged. The result never aliases
// ids when truncated. The caller computes limit = max_length - max_new_tokens
// and, like LongBench, decodes the kept halves and re-tokenises them.
func TruncateMiddle(ids []int, limit int) []int {
	if len(ids) <= limit {
		return ids
	}
	half := max(limit, 0) / 2
	out := make([]int, 0, 2*half)
	out = append(out, ids[:half]...)
	return append(out, ids[len(ids)-half:]...)
}
