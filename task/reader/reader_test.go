package reader

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadLongBench(t *testing.T) {
	got, err := ReadLongBench("testdata/longbench.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d samples, want 3 (blank line skipped)", len(got))
	}
	hp := got[0]
	// The hotpotqa template filled once: the "{input}" inside the context stays literal.
	want := "Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\n" +
		"The following are given passages.\nPassage 1: Alice wrote {input} it.\n\n" +
		"Answer the question based on the given passages. Only give me the answer and do not output any other words.\n\n" +
		"Question: Who wrote it?\nAnswer:"
	if hp.Prompt != want {
		t.Errorf("prompt:\n%q\nwant\n%q", hp.Prompt, want)
	}
	if hp.ID != "hp1" || hp.Task != "hotpotqa" || hp.Metric != "qa_f1" || hp.MaxNewTokens != 32 || hp.Length != 7 || hp.Language != "en" || hp.AllClasses != nil {
		t.Errorf("hotpotqa sample: %+v", hp)
	}
	tr := got[1]
	if tr.Metric != "classification" || tr.MaxNewTokens != 64 || !slices.Equal(tr.AllClasses, []string{"Entity", "Location"}) {
		t.Errorf("trec sample: %+v", tr)
	}
	if !strings.HasPrefix(tr.Prompt, "Please determine the type of the question below. Here are some examples of questions.\n\nQ: a\nType: Entity\nWhat is X?") {
		t.Errorf("trec prompt %q", tr.Prompt)
	}
	c := got[2]
	if c.Prompt != "c\n\nQuestion: q\nAnswer:" || c.Metric != "qa_f1" || c.MaxNewTokens != 64 || len(c.Answers) != 2 {
		t.Errorf("generic sample: %+v", c)
	}
	got, err = ReadLongBench("testdata/longbench.jsonl", Options{Metric: "rouge", MaxNewTokens: 99, Limit: 3})
	if err != nil || got[2].Metric != "rouge" || got[2].MaxNewTokens != 99 || got[0].Metric != "qa_f1" {
		t.Errorf("options: %v %+v", err, got)
	}
}

func TestAllLongBenchTemplates(t *testing.T) {
	if len(longBenchPrompts) != 21 || len(longBenchMaxNew) != 21 {
		t.Fatalf("%d templates, %d budgets", len(longBenchPrompts), len(longBenchMaxNew))
	}
	for name, tmpl := range longBenchPrompts {
		if _, ok := longBenchMaxNew[name]; !ok {
			t.Errorf("%s: no budget", name)
		}
		p, err := format(tmpl, map[string]string{"context": "CTX", "input": "INP"})
		if err != nil || !strings.Contains(p, "CTX") || strings.Contains(p, "{") {
			t.Errorf("%s: %v %q", name, err, p)
		}
	}
	if p, _ := LongBenchPrompt("lcc"); p != "Please complete the code given below. \n{context}Next line of code:\n" {
		t.Errorf("lcc template %q", p)
	}
}

func TestBadLines(t *testing.T) {
	_, err := ReadLongBench("testdata/bad.jsonl", Options{})
	if err == nil || !strings.Contains(err.Error(), "testdata/bad.jsonl:2:") {
		t.Fatalf("want error at line 2, got %v", err)
	}
	var warnings []string
	got, err := ReadLongBench("testdata/bad.jsonl", Options{SkipBad: true, Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "ok1" || got[1].ID != "ok2" {
		t.Fatalf("kept %+v", got)
	}
	wantParts := []string{"bad.jsonl:2: not a JSON object", `bad.jsonl:3: missing field "context"`, `bad.jsonl:4: field "answers": empty answer list`}
	if len(warnings) != 3 {
		t.Fatalf("warnings %q", warnings)
	}
	for i, w := range wantParts {
		if !strings.Contains(warnings[i], w) {
			t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
		}
	}
	if _, err := ReadLongBench("testdata/nope.jsonl", Options{}); err == nil {
		t.Error("missing file must fail")
	}
}

func TestReadInfiniteBench(t *testing.T) {
	pk, err := ReadInfiniteBench("testdata/ib/passkey.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pk) != 2 || pk[0].ID != "0" || !slices.Equal(pk[1].Answers, []string{"123"}) || pk[0].MaxNewTokens != 6 || pk[0].Metric != "contains" {
		t.Fatalf("passkey %+v", pk)
	}
	if !strings.HasSuffix(pk[0].Prompt, "What is the pass key?\n\nThe pass key is") {
		t.Errorf("passkey prompt %q", pk[0].Prompt)
	}
	ch, err := ReadInfiniteBench("testdata/ib/longbook_choice_eng.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch[0].Answers, []string{"Bob", "B"}) || !strings.Contains(ch[0].Prompt, "Question: Who?\nA. Alice\nB. Bob\nC. Carol\nD. Dan\n\nThe letter") {
		t.Errorf("choice %+v", ch[0])
	}
	// Line 1 has a numeric answer: an error naming the field; line 2 is fine.
	_, err = ReadInfiniteBench("testdata/ib/math_find.jsonl", Options{})
	if err == nil || !strings.Contains(err.Error(), "math_find.jsonl:1:") || !strings.Contains(err.Error(), `"answer"`) {
		t.Fatalf("math_find: %v", err)
	}
	mf, err := ReadInfiniteBench("testdata/ib/math_find.jsonl", Options{SkipBad: true})
	if err != nil || len(mf) != 1 {
		t.Fatal(err, mf)
	}
	if !strings.HasPrefix(mf[0].Prompt, "What is the largest number in the following list?\n\n[1, 9, 3]\n\n") {
		t.Errorf("math_find prompt %q", mf[0].Prompt)
	}
	if _, err := ReadInfiniteBench("testdata/longbench.jsonl", Options{}); err == nil || !strings.Contains(err.Error(), "passkey") {
		t.Errorf("unknown task: %v", err)
	}
}

func TestReadRULER(t *testing.T) {
	got, err := ReadRULER("testdata/ruler/niah_single_1/validation.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Task != "niah_single_1" || got[0].Metric != "contains" || got[0].Length != 4096 || got[0].MaxNewTokens != 128 {
		t.Errorf("%+v", got[0])
	}
	if got[0].Prompt != "Some haystack. What is the special magic number? The special magic number is" {
		t.Errorf("prompt %q", got[0].Prompt)
	}
	if got[1].ID != "1" || len(got[1].Answers) != 2 {
		t.Errorf("%+v", got[1])
	}
}

func TestReadChouBun(t *testing.T) {
	got, err := ReadChouBun("testdata/choubun.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Metric != "ja_rouge" || got[1].Metric != "ja_f1" || got[0].Language != "ja" || got[0].Prompt != "文書\n\nQuestion: 要約してください\nAnswer:" {
		t.Errorf("%+v", got)
	}
}

func TestReadJSONL(t *testing.T) {
	got, err := ReadJSONL("testdata/custom.jsonl", "testdata/custom.tmpl", Options{SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		// Line 2 has no {n}; line 3 has no {question}: both skipped.
		t.Fatalf("got %d samples: %+v", len(got), got)
	}
	if got[0].Prompt != "Doc: The sky is blue. (3)\n{literal}\nQ: Color?\nA:" || got[0].ID != "7" || !slices.Equal(got[0].Answers, []string{"blue"}) {
		t.Errorf("%+v", got[0])
	}
	_, err = ReadJSONL("testdata/custom.jsonl", "testdata/custom.tmpl", Options{})
	if err == nil || !strings.Contains(err.Error(), "custom.jsonl:2:") || !strings.Contains(err.Error(), "{n}") {
		t.Errorf("want placeholder error at line 2: %v", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "t.jsonl")
	os.WriteFile(p, []byte(`{"x": "1"}`+"\n"), 0o644)
	tp := filepath.Join(dir, "t.tmpl")
	os.WriteFile(tp, []byte("{x}"), 0o644)
	if _, err := ReadJSONL(p, tp, Options{}); err == nil || !strings.Contains(err.Error(), `"answers" or "answer"`) {
		t.Errorf("missing answers: %v", err)
	}
}

func TestTruncateMiddle(t *testing.T) {
	ids := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	cases := []struct {
		limit int
		want  []int
	}{
		{10, ids}, {20, ids},
		{6, []int{0, 1, 2, 7, 8, 9}},
		{7, []int{0, 1, 2, 7, 8, 9}}, // floor(7/2) = 3 from each end: 6 tokens
		{1, []int{}},
		{0, []int{}},
	}
	for _, c := range cases {
		got := TruncateMiddle(ids, c.limit)
		if !slices.Equal(got, c.want) {
			t.Errorf("limit %d: %v, want %v", c.limit, got, c.want)
		}
	}
	out := TruncateMiddle(ids, 4)
	out[0] = 99
	if ids[0] != 0 {
		t.Error("truncated result aliases the input")
	}
}

func FuzzReadLongBench(f *testing.F) {
	for _, p := range []string{"testdata/longbench.jsonl", "testdata/bad.jsonl"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"input":1}`))
	f.Add([]byte("null\n[]\n\"x\"\n{\"answers\":[\"a\"],\"input\":\"{\",\"context\":\"}\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, skip := range []bool{false, true} {
			samples, err := parseJSONL(strings.NewReader(string(data)), "fuzz.jsonl", Options{SkipBad: skip}, func(o object, line int) (Sample, error) {
				return parseLongBench(o, line, "fuzz", Options{})
			})
			if err != nil {
				if !strings.HasPrefix(err.Error(), "fuzz.jsonl:") {
					t.Fatalf("error without position: %v", err)
				}
				continue
			}
			for _, s := range samples {
				if len(s.Answers) == 0 || s.Metric == "" || s.MaxNewTokens <= 0 {
					t.Fatalf("bad sample %+v", s)
				}
			}
		}
	})
}
