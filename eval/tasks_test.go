package eval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/namm-dev/namm/policy"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadTasksErrors(t *testing.T) {
	_, tok := tiny(t)
	dir := t.TempDir()
	lb := writeFile(t, dir, "lb.jsonl",
		`{"input": "q1", "context": "c", "answers": ["a"], "dataset": "hotpotqa", "_id": "x"}`+"\n"+
			`{"input": "q2", "context": "c", "answers": ["a"`+"\n"+
			`{"input": "q3", "context": "c", "answers": ["b"], "dataset": "hotpotqa", "_id": "y"}`+"\n")
	empty := writeFile(t, dir, "empty.jsonl", `{"input": "q", "context": "c", "answers": [], "dataset": "hotpotqa"}`+"\n")
	custom := writeFile(t, dir, "custom.jsonl", `{"doc": "D", "answer": "z"}`+"\n")
	tmpl := writeFile(t, dir, "t.txt", "Doc: {doc}\nA:")
	cases := []struct {
		name string
		spec string
		want []string
	}{
		{"unknown task lists tasks and syntax", "niah_bogus:len=256", []string{"unknown task", "niah_single", "longbench:PATH"}},
		{"bad generator field", "niah_single:len=abc", []string{"len"}},
		{"malformed line names file and line", "longbench:" + lb, []string{lb + ":2"}},
		{"empty answer list is an error", "longbench:" + empty, []string{empty + ":1"}},
		{"jsonl needs a template", "jsonl:" + custom, []string{"template=FILE"}},
		{"unknown metric lists metrics", "jsonl:" + custom + ":template=" + tmpl + ":metric=bogus", []string{"unknown metric", "qa_f1", "rouge"}},
		{"template only for jsonl", "longbench:" + lb + ":template=" + tmpl, []string{"only jsonl"}},
		{"bad max_new", "jsonl:" + custom + ":template=" + tmpl + ":max_new=0", []string{"max_new"}},
		{"missing file", "ruler:" + filepath.Join(dir, "none.jsonl"), []string{"none.jsonl"}},
		{"no path", "longbench:", []string{"no file path"}},
		{"nothing", " ", []string{"no tasks given"}},
		{"same task twice", "niah_single:len=256:n=1,niah_single:len=256:n=1", []string{"given twice"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadTasks(strings.Split(c.spec, ","), tok, LoadOptions{})
			if err == nil {
				t.Fatalf("LoadTasks(%q) accepted", c.spec)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	// --skip-bad: the malformed line is reported and skipped.
	var warnings []string
	tasks, err := LoadTasks([]string{"longbench:" + lb}, tok, LoadOptions{SkipBad: true, Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Name != "hotpotqa" || len(tasks[0].Samples) != 2 {
		t.Fatalf("skip-bad: got %+v", tasks)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], lb+":2") {
		t.Errorf("skip-bad warnings %q, want one naming %s:2", warnings, lb)
	}
	if s := tasks[0].Samples[1]; s.Metric != "qa_f1" || s.MaxNewTokens != 32 || s.Answers[0] != "b" || !strings.Contains(s.Prompt, "q3") {
		t.Errorf("hotpotqa sample read as %+v", s)
	}
}

func TestLoadTasksOptions(t *testing.T) {
	_, tok := tiny(t)
	dir := t.TempDir()
	// A merged LongBench file with two datasets and a repeated id; the
	// path holds a ':' (options are parsed from the end).
	sub := filepath.Join(dir, "a:b")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	lb := writeFile(t, sub, "merged.jsonl",
		`{"input": "q1", "context": "c", "answers": ["a"], "dataset": "trec", "all_classes": ["a", "b"], "_id": "x"}`+"\n"+
			`{"input": "q2", "context": "c", "answers": ["a"], "dataset": "hotpotqa", "_id": "x"}`+"\n"+
			`{"input": "q3", "context": "c", "answers": ["a"], "dataset": "trec", "all_classes": ["a", "b"], "_id": "x"}`+"\n")
	tasks, err := LoadTasks([]string{"longbench:" + lb + ":max_new=7"}, tok, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 || tasks[0].Name != "trec" || tasks[1].Name != "hotpotqa" {
		t.Fatalf("tasks %+v", tasks)
	}
	if ids := []string{tasks[0].Samples[0].ID, tasks[0].Samples[1].ID}; ids[0] != "x" || ids[1] != "x#2" {
		t.Errorf("repeated ids made %q, want x and x#2", ids)
	}
	if s := tasks[0].Samples[0]; s.Dataset != "trec" || s.Metric != "classification" || len(s.AllClasses) != 2 {
		t.Errorf("trec sample %+v", s)
	}

	// --samples sets n where the spec gives none and caps where it does;
	// --seed applies only where the spec gives none.
	count := func(spec string, o LoadOptions) (int, string) {
		ts, err := LoadTasks([]string{spec}, tok, o)
		if err != nil {
			t.Fatal(err)
		}
		return len(ts[0].Samples), ts[0].Samples[0].Prompt
	}
	if n, _ := count("niah_single:len=256", LoadOptions{Samples: 3}); n != 3 {
		t.Errorf("--samples 3 on a spec without n: %d samples", n)
	}
	if n, _ := count("niah_single:len=256:n=4", LoadOptions{Samples: 1}); n != 1 {
		t.Errorf("--samples 1 on n=4: %d samples", n)
	}
	_, p1 := count("niah_single:len=256:n=1", LoadOptions{})
	_, p7 := count("niah_single:len=256:n=1", LoadOptions{Seed: 7, HasSeed: true})
	_, p7b := count("niah_single:len=256:n=1:seed=7", LoadOptions{})
	_, pFixed := count("niah_single:len=256:n=1:seed=1", LoadOptions{Seed: 7, HasSeed: true})
	if p1 == p7 || p7 != p7b || pFixed != p1 {
		t.Errorf("seed override: default==seed7 %v, seed7==seed=7 %v, explicit seed=1 kept %v", p1 == p7, p7 == p7b, pFixed == p1)
	}

	// A suite expands to its specs.
	ts, err := LoadTasks([]string{"quick"}, tok, LoadOptions{Samples: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 4 {
		t.Errorf("suite quick gave %d tasks", len(ts))
	}
}

func TestSampleValidate(t *testing.T) {
	good := Sample{ID: "1", Task: "t", Answers: []string{"a"}, Metric: "qa_f1", MaxNewTokens: 4}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Sample){
		"empty answer list": func(s *Sample) { s.Answers = nil },
		"unknown metric":    func(s *Sample) { s.Metric = "f2" },
		"max new tokens":    func(s *Sample) { s.MaxNewTokens = 0 },
	} {
		s := good
		mod(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// ScoreSamples refuses such a sample instead of scoring it 0.
	e, tok := tiny(t)
	bad := good
	bad.Answers = nil
	_, err := ScoreSamples(e, tok, []Sample{bad}, func() (policy.Policy, error) { return policy.New("full", policy.Budget{}) })
	if err == nil || !strings.Contains(err.Error(), "empty answer list") {
		t.Errorf("ScoreSamples with no answers: %v", err)
	}
}

// TestPromptIDsTruncation checks LongBench's middle truncation: the start and
// the end of the prompt survive, the middle goes, and the result fits.
func TestPromptIDsTruncation(t *testing.T) {
	_, tok := tiny(t)
	var words []string
	for i := 0; i < 300; i++ {
		words = append(words, "word"+strings.Repeat("x", i%5))
	}
	prompt := "BEGINNING of the text " + strings.Join(words, " ") + " MIDDLEMARK " + strings.Join(words, " ") + " the END"
	full := tok.Encode(prompt, true)
	ids, orig, err := PromptIDs(tok, prompt, 100, 20)
	if err != nil {
		t.Fatal(err)
	}
	if orig != len(full) || orig <= 80 {
		t.Fatalf("original %d tokens, Encode gives %d", orig, len(full))
	}
	if len(ids) < 76 || len(ids) > 84 {
		t.Errorf("truncated to %d tokens, want about 80", len(ids))
	}
	text := tok.Decode(ids, true)
	if !strings.HasPrefix(text, "BEGINNING of the text") || !strings.HasSuffix(text, "the END") || strings.Contains(text, "MIDDLEMARK") {
		t.Errorf("truncated prompt %q", text)
	}
	if ids[0] != full[0] {
		t.Errorf("BOS lost: %d vs %d", ids[0], full[0])
	}
	// Short prompts are untouched; no room at all is an error.
	short, _, err := PromptIDs(tok, "hello there", 100, 20)
	if err != nil || len(short) != len(tok.Encode("hello there", true)) {
		t.Errorf("short prompt: %v %v", short, err)
	}
	if _, _, err := PromptIDs(tok, "hello", 20, 20); err == nil {
		t.Error("max length = max new tokens accepted")
	}
}

func TestJournalBadLine(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, JournalFile, `{"id":"1","task":"t","policy":"full","budget":"","score":1}`+"\n"+"garbage\n"+`{"id":"2"}`+"\n")
	if _, _, err := OpenJournal(p); err == nil || !strings.Contains(err.Error(), p+":2") {
		t.Errorf("bad journal line: %v", err)
	}
	// A torn last line is dropped and the file is cut back to whole lines.
	p = writeFile(t, dir, "j2.jsonl", `{"id":"1","task":"t","policy":"full","budget":"","score":1}`+"\n"+`{"id":"2","ta`)
	j, done, err := OpenJournal(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].ID != "1" || done[0].Score != 1 {
		t.Errorf("journal read %+v", done)
	}
	if err := j.Append(SampleResult{ID: "3", Task: "t", Policy: "full"}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j, done, err = OpenJournal(p)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if len(done) != 2 || done[1].ID != "3" {
		t.Errorf("after append: %+v", done)
	}
}

func TestRunCancelled(t *testing.T) {
	e, tok := tiny(t)
	tasks := shortSamples(t, "niah_single:len=256:n=2", 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Config{Scorer: &Scorer{Engine: e, Tokenizer: tok}, Tasks: tasks, Variants: []Variant{{Policy: "full"}}})
	if err == nil {
		t.Error("a cancelled run reported success")
	}
}

// TestGeneratorSpecs: a suite expands to its specs and a generator spec to
// itself, with --samples and --seed where the text gives no n or seed; a
// file spec is refused with its name.
func TestGeneratorSpecs(t *testing.T) {
	opts := LoadOptions{Samples: 3, Seed: 7, HasSeed: true}
	specs, err := GeneratorSpecs("longbench", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Task != "passage_retrieval" || specs[1].Task != "passage_count" {
		t.Fatalf("suite longbench: %v", specs)
	}
	for _, s := range specs {
		if s.N != 3 || s.Seed != 7 || s.Length != 8192 {
			t.Errorf("suite spec %s: want n=3 seed=7 len=8192", s)
		}
	}
	specs, err = GeneratorSpecs(" qa:len=512:n=2 ", opts)
	if err != nil || len(specs) != 1 || specs[0].String() != "qa:len=512:n=2:seed=7" {
		t.Errorf("qa spec: %v, %v", specs, err)
	}
	if _, err := GeneratorSpecs("longbench:data/hotpotqa.jsonl", opts); err == nil || !strings.Contains(err.Error(), "longbench:data/hotpotqa.jsonl is a file") {
		t.Errorf("file spec: error %v", err)
	}
}
