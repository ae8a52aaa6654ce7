package reader

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ReadRULER reads a RULER JSONL file as RULER's prepare.py writes it (fields
// index, input, outputs, length, optional answer_prefix). The input already
// holds the task's template; answer_prefix, when present and not already at
// the end of input, is appended, as RULER's prediction step does. The metric
// is "contains" (RULER's string_match_all). The task is the file name, or its
// directory's name for RULER's TASK/validation.jsonl layout; the generation
// budget is opts.MaxNewTokens (default 128), since the file does not carry
// RULER's per-task tokens_to_generate.
func ReadRULER(path string, opts Options) ([]Sample, error) {
	task := taskFromPath(path)
	if task == "validation" || task == "test" {
		task = filepath.Base(filepath.Dir(path))
	}
	return readJSONL(path, opts, func(o object, line int) (Sample, error) {
		input, err := o.str("input")
		if err != nil {
			return Sample{}, err
		}
		outputs, err := o.strList("outputs", false)
		if err != nil {
			return Sample{}, err
		}
		prefix, err := o.optStr("answer_prefix")
		if err != nil {
			return Sample{}, err
		}
		if prefix != "" && !strings.HasSuffix(input, prefix) {
			input += prefix
		}
		length, err := o.optInt("length")
		if err != nil {
			return Sample{}, err
		}
		id, err := o.idField("index")
		if err != nil {
			return Sample{}, err
		}
		if id == "" {
			id = fmt.Sprintf("%s-%d", task, line)
		}
		return Sample{ID: id, Task: task, Prompt: input, Answers: outputs, Metric: opts.metric("contains"),
			MaxNewTokens: opts.maxNew(128), Length: length, Language: "en"}, nil
	})
}

// chouBunMetric: the summarisation set is scored with ROUGE-L, the QA sets
// with F1, over Japanese words.
var chouBunMetric = map[string]string{
	"wiki_qa": "ja_f1", "edinet_qa": "ja_f1", "corp_sec_qa": "ja_f1", "corp_sec_sum": "ja_rouge",
}

// ReadChouBun reads a ChouBun JSONL file (SakanaAI/ChouBun, LongBench-style
// fields: input, context, answers, length, dataset, _id). The prompt uses
// the generic template "{context}\n\nQuestion: {input}\nAnswer:" (ChouBun's
// own prompts are not built in); corp_sec_sum gets ja_rouge, every other
// dataset ja_f1 (or opts.Metric for unknown datasets); the generation budget
// is opts.MaxNewTokens (default 64).
func ReadChouBun(path string, opts Options) ([]Sample, error) {
	def := taskFromPath(path)
	return readJSONL(path, opts, func(o object, line int) (Sample, error) {
		s, err := parseLongBench(o, line, def, Options{Metric: opts.metric("ja_f1"), MaxNewTokens: opts.maxNew(64)})
		if err != nil {
			return s, err
		}
		// parseLongBench would give a LongBench dataset name LongBench's
		// template; ChouBun names do not collide with them.
		if m, ok := chouBunMetric[s.Task]; ok {
			s.Metric = m
		}
		s.Language = "ja"
		return s, nil
	})
}

// ReadJSONL reads any JSONL file whose lines are objects: the prompt is the
// template file's text with {field} placeholders filled from each line
// (string fields as they are, other JSON values as their JSON text; "{{" and
// "}}" are literal braces). Answers come from "answers" (list) or "answer"
// (string or list). The task is the file name, the metric opts.Metric
// (default qa_f1), the budget opts.MaxNewTokens (default 64); ID and length
// come from "id"/"_id"/"index" and "length" when present.
func ReadJSONL(path string, templatePath string, opts Options) ([]Sample, error) {
	tb, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, fmt.Errorf("reader: template: %w", err)
	}
	tmpl := string(tb)
	task := taskFromPath(path)
	return readJSONL(path, opts, func(o object, line int) (Sample, error) {
		values := make(map[string]string, len(o))
		for k, raw := range o {
			var s string
			if err := json.Unmarshal(raw, &s); err == nil {
				values[k] = s
			} else {
				values[k] = string(raw)
			}
		}
		prompt, err := format(tmpl, values)
		if err != nil {
			return Sample{}, badLine("%s: %v", templatePath, err)
		}
		var answers []string
		if _, ok := o["answers"]; ok {
			answers, err = o.strList("answers", true)
		} else {
			answers, err = o.strList("answer", true)
			if err != nil && !hasField(o, "answer") {
				err = badLine("missing field \"answers\" or \"answer\"")
			}
		}
		if err != nil {
			return Sample{}, err
		}
		id := ""
		for _, k := range []string{"id", "_id", "index"} {
			if id, err = o.idField(k); err != nil {
				return Sample{}, err
			} else if id != "" {
				break
			}
		}
		if id == "" {
			id = fmt.Sprintf("%s-%d", task, line)
		}
		length, err := o.optInt("length")
		if err != nil {
			return Sample{}, err
		}
		classes, err := o.optStrList("all_classes")
		if err != nil {
			return Sample{}, err
		}
		lang, _ := o.optStr("language")
		return Sample{ID: id, Task: task, Prompt: prompt, Answers: answers, AllClasses: classes,
			Metric: opts.metric("qa_f1"), MaxNewTokens: opts.maxNew(64), Length: length, Language: lang}, nil
	})
}

func hasField(o object, name string) bool { _, ok := o[name]; return ok }
