package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/namm-dev/namm/task/gen"
	"github.com/namm-dev/namm/task/metric"
	"github.com/namm-dev/namm/task/reader"
	"github.com/namm-dev/namm/tokenizer"
)

const mistralTokenizer = "../../testdata/tokenizers/mistral-7b"

// exportSpecsText has every exportable generator at a short length;
// facts asks for lists, whose several answers make one LongBench answer.
var exportSpecsText = []string{
	"passage_retrieval:len=1024:n=2", "passage_count:len=1024:n=2", "qa:len=1024:n=2",
	"facts:len=1024:n=2:kind=list", "records:len=1024:n=2",
}

// runExport runs `namm export-tasks --tokenizer mistral-7b ARGS`.
func runExport(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runCmd(t, append([]string{"export-tasks", "--tokenizer", mistralTokenizer}, args...)...)
}

// TestExportTasksRoundTrip: every exportable task written to a file and read
// back by reader.ReadLongBench gets its LongBench dataset's metric, budget and
// template around the generator's context and input, the generator's
// answers, and the context's word count; the reference answer scores 1 under
// that metric and a wrong one less.
func TestExportTasksRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ours.jsonl")
	if _, stderr, err := runExport(t, "--tasks", strings.Join(exportSpecsText, ","), "--out", file); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(stderr, "wrote 10 samples") {
		t.Errorf("stderr %q, want the count of samples written", stderr)
	}
	read, err := reader.ReadLongBench(file, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 10 {
		t.Fatalf("read %d samples back, want 10", len(read))
	}
	want := map[string]struct {
		dataset, metric string
		maxNew          int
		wrong           string
	}{
		"passage_retrieval": {"passage_retrieval_en", "retrieval", 32, "Paragraph 99"},
		"passage_count":     {"passage_count", "count", 32, "99"},
		"qa":                {"hotpotqa", "qa_f1", 32, "I do not know."},
		"facts":             {"multifieldqa_en", "qa_f1", 64, "Nobody has it."},
		"records":           {"multifieldqa_en", "qa_f1", 64, "I do not know."},
	}
	tok, err := tokenizer.LoadDir(mistralTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]gen.Sample{}
	for _, text := range exportSpecsText {
		spec, err := gen.ParseSpec(text)
		if err != nil {
			t.Fatal(err)
		}
		xs, err := gen.Generate(spec, tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range xs {
			byID[x.ID] = x
		}
	}
	for _, s := range read {
		g, ok := byID[s.ID]
		if !ok {
			t.Errorf("sample %s: no generated sample has this id", s.ID)
			continue
		}
		w := want[g.Task]
		if s.Task != w.dataset || s.Metric != w.metric || s.MaxNewTokens != w.maxNew || s.Language != "en" || s.AllClasses != nil {
			t.Errorf("%s: dataset %s, metric %s, max new %d, language %q, classes %v; want %s, %s, %d, en, none",
				s.ID, s.Task, s.Metric, s.MaxNewTokens, s.Language, s.AllClasses, w.dataset, w.metric, w.maxNew)
		}
		if m, _ := metric.DatasetMetric(s.Task); m != s.Metric {
			t.Errorf("%s: metric %s, LongBench's dataset2metric says %s", s.ID, s.Metric, m)
		}
		tmpl, _ := reader.LongBenchPrompt(s.Task)
		head, _, _ := strings.Cut(tmpl, "{")
		if !strings.HasPrefix(s.Prompt, head) || !strings.Contains(s.Prompt, g.Context) || !strings.Contains(s.Prompt, g.Input) {
			t.Errorf("%s: the prompt is not LongBench's template around the context and input:\n%.300s", s.ID, s.Prompt)
		}
		if s.Length != len(strings.Fields(g.Context)) || s.Length < 300 {
			t.Errorf("%s: length %d, want the context's %d words", s.ID, s.Length, len(strings.Fields(g.Context)))
		}
		wantAnswers := strings.Join(g.Answers, ", ")
		if len(s.Answers) != 1 || s.Answers[0] != wantAnswers {
			t.Errorf("%s: answers %q, want [%q]", s.ID, s.Answers, wantAnswers)
		}
		if g.Task == "facts" && len(g.Answers) < 2 {
			t.Errorf("%s: a list with %d names", s.ID, len(g.Answers))
		}
		if got, err := metric.Score(s.Metric, s.Answers[0], s.Answers, nil); err != nil || got != 1 {
			t.Errorf("%s: the reference %q scores %v (%v), want 1", s.ID, s.Answers[0], got, err)
		}
		if got, _ := metric.Score(s.Metric, w.wrong, s.Answers, nil); got >= 1 {
			t.Errorf("%s: the wrong answer %q scores %v, want < 1", s.ID, w.wrong, got)
		}
	}
}

// TestExportTasksScoresByHand: scores worked out by hand for answers of the
// exported kinds. Retrieval and count score the share of the numbers in the
// prediction that are right; QA F1 counts words after lower-casing and
// dropping punctuation and articles.
func TestExportTasksScoresByHand(t *testing.T) {
	list, err := toLongBench(gen.Sample{ID: "facts#0", Task: "facts", Metric: "contains",
		Answers: []string{"Ada Abernathy", "Bruno Blackwood"}, Context: "text", Input: "Who?"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		metric, prediction string
		answers            []string
		want               float64
	}{
		{"retrieval", "Paragraph 3", []string{"Paragraph 3"}, 1},
		{"retrieval", "Paragraph 3 or Paragraph 4", []string{"Paragraph 3"}, 0.5},
		{"retrieval", "Paragraph 4", []string{"Paragraph 3"}, 0},
		{"count", "There are 5 unique paragraphs out of 7.", []string{"5"}, 0.5},
		{"qa_f1", "Tisnes.", []string{"Tisnes"}, 1},
		// 4 common words; precision 4/5 ("and"), recall 4/4: F1 = 2*0.8/1.8.
		{"qa_f1", "Bruno Blackwood and Ada Abernathy", list.Answers, 8.0 / 9},
		// One name of two: precision 1, recall 2/4: F1 = 2/3.
		{"qa_f1", "Ada Abernathy", list.Answers, 2.0 / 3},
	} {
		got, err := metric.Score(c.metric, c.prediction, c.answers, nil)
		if err != nil || got < c.want-1e-12 || got > c.want+1e-12 {
			t.Errorf("%s(%q, %q) = %v (%v), want %v", c.metric, c.prediction, c.answers, got, err, c.want)
		}
	}
	if list.Dataset != "multifieldqa_en" || list.Length != 1 || list.ID != "facts#0" {
		t.Errorf("record %+v", list)
	}
	if _, err := toLongBench(gen.Sample{ID: "cwe#0", Task: "cwe", Answers: []string{"a"}}); err == nil || !strings.Contains(err.Error(), "cwe") {
		t.Errorf("cwe sample mapped: %v", err)
	}
}

// TestExportTasksDeterministic: the same flags write the same bytes, to a
// file or to standard output; another seed writes other samples; ids are
// unique.
func TestExportTasksDeterministic(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--tasks", "qa:len=512,passage_count:len=512,records:len=512", "--samples", "3"}
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	for _, f := range []string{a, b} {
		if _, _, err := runExport(t, append(args, "--out", f)...); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	stdout, _, err := runExport(t, append(args, "--out", "-")...)
	if err != nil {
		t.Fatal(err)
	}
	if len(da) == 0 || !bytes.Equal(da, db) || stdout != string(da) {
		t.Errorf("two exports with the same flags differ (%d, %d, %d bytes on stdout)", len(da), len(db), len(stdout))
	}
	other, _, err := runExport(t, append(args, "--seed", "2", "--out", "-")...)
	if err != nil {
		t.Fatal(err)
	}
	if other == stdout {
		t.Error("--seed 2 wrote the same samples as seed 1")
	}
	read, err := reader.ReadLongBench(a, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, s := range read {
		ids[s.ID] = true
	}
	if len(read) != 9 || len(ids) != 9 || !ids["records:len=512:n=3:seed=1#2"] {
		t.Errorf("%d samples, %d ids (%v), want 9 distinct ids of n=3 specs", len(read), len(ids), ids)
	}
}

// TestExportTasksRefused: a task without a LongBench counterpart, alone or
// in a suite, is refused with its name and the tasks that can be exported,
// and leaves --out as it was; bad flags are refused with the flag named.
func TestExportTasksRefused(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(out, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exportable := "facts, passage_count, passage_retrieval, qa, records"
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--tasks", "qa:len=512,niah_single:len=512", "--out", out}, []string{"task niah_single has no LongBench counterpart", exportable}},
		{[]string{"--tasks", "vartrack", "--out", out}, []string{"task vartrack", exportable}},
		{[]string{"--tasks", "aggregation", "--out", out}, []string{"task vartrack (in aggregation)", exportable}},
		{[]string{"--tasks", "longbench:" + out, "--out", out}, []string{"is a file, not a generator"}},
		{[]string{"--tasks", "bogus", "--out", out}, []string{`unknown task "bogus"`}},
		{[]string{"--tasks", "qa:len=abc", "--out", out}, []string{"len"}},
		{[]string{"--tasks", "qa", "--out", out, "--samples", "-1"}, []string{"--samples must be >= 0"}},
		{[]string{"--tasks", " , ", "--out", out}, []string{"no tasks"}},
		{[]string{"--out", out}, []string{"give --tasks", exportable}},
		{[]string{"--tasks", "qa"}, []string{"give --out"}},
		{[]string{"--tasks", "qa", "--out", out, "--model", "x"}, []string{"--model or --tokenizer, not both"}},
		{[]string{"--tasks", "qa", "--out", out, "stray"}, []string{"unknown command"}},
	} {
		if _, _, err := runExport(t, c.args...); err == nil {
			t.Errorf("%q: no error", c.args)
		} else {
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q: error %q, want one containing %q", c.args, err, w)
				}
			}
		}
	}
	if _, _, err := runCmd(t, "export-tasks", "--tokenizer", "no/such/dir", "--tasks", "qa", "--out", out); err == nil || !strings.Contains(err.Error(), "--tokenizer") {
		t.Errorf("missing tokenizer: %v", err)
	}
	if data, _ := os.ReadFile(out); string(data) != "old\n" {
		t.Errorf("a refused export changed --out: %q", data)
	}
}

// TestExportTasksHelp: --help says how the length field is counted and that
// the exported prompt's length differs from len.
func TestExportTasksHelp(t *testing.T) {
	out, _, err := runCmd(t, "export-tasks", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"word count", "longer or shorter than len", "passage_retrieval -> passage_retrieval_en", "- for standard output"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// TestExportTasksPrompts: --format prompts writes any generator's samples as namm eval runs
// them: the ids eval's journal records for the same flags, each prompt ending with its answer
// prefix and holding its needle, and length the prompt's tokens with BOS.
func TestExportTasksPrompts(t *testing.T) {
	dir := t.TempDir()
	model := "../../testdata/models/tiny-llama"
	file := filepath.Join(dir, "prompts.jsonl")
	if _, _, err := runCmd(t, "export-tasks", "--model", model, "--tasks", "niah_single:len=600,vartrack:len=600",
		"--samples", "2", "--format", "prompts", "--out", file); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(model)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r promptRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		if !strings.HasSuffix(r.Prompt, r.AnswerPrefix) || r.AnswerPrefix == "" {
			t.Errorf("%s: prompt does not end with its answer prefix %q", r.ID, r.AnswerPrefix)
		}
		if n := len(tok.Encode(r.Prompt, true)); n != r.Length {
			t.Errorf("%s: length %d, the prompt has %d tokens", r.ID, r.Length, n)
		}
		for _, a := range r.Answers {
			if !strings.Contains(r.Prompt, a) {
				t.Errorf("%s: answer %q not in the prompt", r.ID, a)
			}
		}
	}
	evalDir := filepath.Join(dir, "eval")
	if _, _, err := runCmd(t, "eval", "--model", model, "--tasks", "niah_single:len=600,vartrack:len=600", "--samples", "2",
		"--memory", "full", "--no-plots", "--quiet", "--out", evalDir); err != nil {
		t.Fatal(err)
	}
	journal, err := os.ReadFile(filepath.Join(evalDir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var evalIDs []string
	for _, line := range strings.Split(strings.TrimSpace(string(journal)), "\n") {
		var r struct{ ID string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		evalIDs = append(evalIDs, r.ID)
	}
	slices.Sort(ids)
	slices.Sort(evalIDs)
	if !slices.Equal(ids, evalIDs) || len(ids) != 4 {
		t.Errorf("exported ids %v, eval's %v", ids, evalIDs)
	}
	if _, _, err := runExport(t, "--tasks", "qa", "--format", "xml", "--out", file); err == nil || !strings.Contains(err.Error(), "longbench or prompts") {
		t.Errorf("--format xml: %v", err)
	}
}
