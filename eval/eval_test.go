package eval

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/internal/modelid"
	"github.com/namm-dev/namm/internal/provenance"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/task/metric"
	"github.com/namm-dev/namm/tokenizer"
)

const tinyModel = "../testdata/models/tiny-llama"

var (
	loadOnce sync.Once
	tinyEng  *engine.Engine
	tinyTok  *tokenizer.Tokenizer
	loadErr  error
)

// tiny loads the random-weight fixture model once for all tests.
func tiny(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	t.Helper()
	loadOnce.Do(func() {
		tinyTok, loadErr = tokenizer.LoadDir(tinyModel)
		if loadErr == nil {
			tinyEng, loadErr = engine.Load(tinyModel, engine.Options{Backend: "go", ChunkSize: 128})
		}
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return tinyEng, tinyTok
}

// sessionsRun counts the sequences the engine actually ran with the test
// policy "evaltest_count" (a full cache that counts its first Update).
var sessionsRun atomic.Int64

type countingFull struct {
	policy.Full
	ran bool
}

func (c *countingFull) Name() string { return "evaltest_count" }

func (c *countingFull) Update(v *policy.LayerView) ([][]int, error) {
	if !c.ran {
		c.ran = true
		sessionsRun.Add(1)
	}
	return nil, nil
}

func init() {
	policy.Register("evaltest_count", "test: full cache counting sessions", func(o policy.Options, b policy.Budget) (policy.Policy, error) {
		if !b.IsZero() {
			return nil, policy.ErrBadOption
		}
		return &countingFull{}, nil
	})
}

// shortSamples loads a generator task and cuts the generation budget, which
// keeps the random model's decoding (it rarely emits EOS) short.
func shortSamples(t *testing.T, spec string, maxNew int) []Task {
	t.Helper()
	_, tok := tiny(t)
	tasks, err := LoadTasks([]string{spec}, tok, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range tasks {
		for j := range tasks[i].Samples {
			tasks[i].Samples[j].MaxNewTokens = maxNew
		}
	}
	return tasks
}

func TestBuildMatrix(t *testing.T) {
	b := func(ns ...int) []policy.Budget {
		var out []policy.Budget
		for _, n := range ns {
			out = append(out, policy.Budget{Tokens: n})
		}
		return out
	}
	cases := []struct {
		name     string
		policies []string
		budgets  []policy.Budget
		noRef    bool
		want     []string // variant labels
		notes    int
		err      string
	}{
		{"full only", []string{"full"}, nil, false, []string{"full"}, 0, ""},
		{"full with a budget is ignored", []string{"full"}, b(256), false, []string{"full"}, 1, ""},
		{"reference added", []string{"h2o", "streaming"}, b(256), false, []string{"full", "h2o@256", "streaming@256"}, 0, ""},
		{"sweep", []string{"h2o"}, b(64, 128), false, []string{"full", "h2o@64", "h2o@128"}, 0, ""},
		{"unbudgeted runs once", []string{"fastgen", "tova"}, b(64, 128), false, []string{"full", "fastgen", "tova@64", "tova@128"}, 1, ""},
		{"no reference", []string{"h2o"}, b(64), true, []string{"h2o@64"}, 0, ""},
		{"ratio", []string{"snapkv"}, []policy.Budget{{Ratio: 0.5}}, false, []string{"full", "snapkv@r0.5"}, 0, ""},
		{"options kept", []string{"streaming:sinks=2"}, b(32), false, []string{"full", "streaming:sinks=2@32"}, 0, ""},
		{"duplicates merged", []string{"full", "h2o", "h2o"}, b(64), false, []string{"full", "h2o@64"}, 1, ""},
		{"needs a budget", []string{"h2o"}, nil, false, nil, 0, "needs a budget"},
		{"unknown policy lists valid", []string{"nope"}, b(64), false, nil, 0, "valid: "},
		{"bad option", []string{"streaming:bogus=1"}, b(64), false, nil, 0, "bogus"},
		{"none", nil, nil, true, nil, 0, "no memory policy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := BuildMatrix(c.policies, c.budgets, c.noRef)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				if c.err == "valid: " && !strings.Contains(err.Error(), "h2o") {
					t.Errorf("error does not list the policies: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range m.Variants {
				got = append(got, v.Label())
				if _, err := v.New(); err != nil {
					t.Errorf("variant %s: %v", v.Label(), err)
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("variants %v, want %v", got, c.want)
			}
			if len(m.Notes) != c.notes {
				t.Errorf("notes %q, want %d", m.Notes, c.notes)
			}
		})
	}
}

func TestParseBudgets(t *testing.T) {
	got, err := ParseBudgets("256, 0.25,r0.5,1024")
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.Budget{{Tokens: 256}, {Ratio: 0.25}, {Ratio: 0.5}, {Tokens: 1024}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"abc", "0", "-5", "1.5", "r2", "rNaN", "r+Inf", "0.0"} {
		if _, err := ParseBudgets(bad); err == nil {
			t.Errorf("ParseBudgets(%q) accepted", bad)
		}
	}
}

func TestSplitPolicies(t *testing.T) {
	cases := map[string][]string{
		"full,h2o,streaming":                   {"full", "h2o", "streaming"},
		"h2o:recent=8,streaming":               {"h2o:recent=8", "streaming"},
		"fastgen:threshold=0.9,local=0.2,tova": {"fastgen:threshold=0.9,local=0.2", "tova"},
		"namm:/a/b.namm,mode=perhead,h2o":      {"namm:/a/b.namm,mode=perhead", "h2o"},
		" full , ,h2o":                         {"full", "h2o"},
	}
	for in, want := range cases {
		if got := SplitPolicies(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitPolicies(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSummarize checks the normalisation by hand: scores are the metric x100,
// the normalised score divides by the full cache on the same sample IDs, and
// the all-tasks row averages the per-task ratios.
func TestSummarize(t *testing.T) {
	res := func(task, id, pol, budget string, score float64, meanKV float64) SampleResult {
		return SampleResult{Task: task, ID: id, Policy: pol, Budget: budget, Score: score,
			MeanKVTokens: meanKV, PeakKVTokens: int(2 * meanKV), MeanPerLayer: []float64{meanKV, meanKV},
			PromptTokens: 90, GeneratedTokens: 10, Seconds: 0.5}
	}
	results := []SampleResult{
		res("A", "1", "full", "", 1.0, 100), res("A", "2", "full", "", 0.5, 100),
		res("A", "1", "h2o", "64", 0.5, 50), res("A", "2", "h2o", "64", 0.25, 50),
		res("B", "1", "full", "", 0.8, 200), res("B", "2", "full", "", 0.0, 200),
		res("B", "1", "h2o", "64", 0.4, 60), // sample 2 of B not run with h2o
		res("C", "1", "full", "", 0, 10), res("C", "1", "h2o", "64", 0.3, 5),
	}
	variants := []Variant{{Policy: "full"}, {Policy: "h2o", Budget: policy.Budget{Tokens: 64}}}
	rows := Summarize(results, []string{"A", "B", "C"}, variants)
	find := func(task, label string) Row {
		for _, r := range rows {
			if r.Task == task && r.Label() == label {
				return r
			}
		}
		t.Fatalf("no row %s %s in %+v", task, label, rows)
		return Row{}
	}
	near := func(what string, got, want float64) {
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	a := find("A", "h2o@64")
	near("A h2o score", a.Score, 37.5)
	near("A h2o normalised", *a.Normalized, 0.75/1.5)
	near("A h2o tok/s", a.TokensPerSecond, 200)
	near("A h2o peak/layer", a.PeakKV, 50)
	b := find("B", "h2o@64")
	near("B h2o normalised (sample 1 only)", *b.Normalized, 0.4/0.8)
	if b.RefSamples != 1 {
		t.Errorf("B reference samples %d, want 1", b.RefSamples)
	}
	near("B full normalised", *find("B", "full").Normalized, 1)
	if c := find("C", "h2o@64"); c.Normalized != nil {
		t.Errorf("C: reference scored 0, normalised should be undefined, got %v", *c.Normalized)
	}
	all := find(AllTasks, "h2o@64")
	near("all h2o normalised (A and B)", *all.Normalized, (0.5+0.5)/2)
	near("all h2o score", all.Score, (37.5+40+30)/3)
	near("all h2o mean KV", all.MeanKV, (50+60+5)/3.0)
	if len(rows) != 3*2+2 {
		t.Errorf("%d rows, want 8", len(rows))
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, rows, []string{"a note"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"h2o", "64", "0.500", "37.50", AllTasks, "note: a note"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestRunNormalisedAndResume runs the tiny model end to end: answers are set
// to the full cache's own predictions so that the reference scores 1 and a
// policy that never evicts (h2o with a budget above the length) also scores
// 1; then the same run resumes without running anything, and a run cut short
// (journal with a torn last line) runs only what is missing.
func TestRunNormalisedAndResume(t *testing.T) {
	e, tok := tiny(t)
	tasks := shortSamples(t, "niah_single:len=256:n=2", 12)
	samples := tasks[0].Samples

	ref, err := ScoreSamples(e, tok, samples, func() (policy.Policy, error) { return policy.New("full", policy.Budget{}) })
	if err != nil {
		t.Fatal(err)
	}
	for i := range samples {
		if ref[i].Prediction == "" || strings.TrimSpace(metric.NormalizeAnswer(ref[i].Prediction)) == "" {
			t.Skipf("sample %d: the random model's prediction %q has no words to score", i, ref[i].Prediction)
		}
		samples[i].Answers = []string{ref[i].Prediction}
		samples[i].Metric = "qa_f1"
		if ref[i].PromptTokens < 200 || ref[i].PromptTokens > 256 || ref[i].Truncated {
			t.Errorf("sample %d: %d prompt tokens (truncated %v), want about 256", i, ref[i].PromptTokens, ref[i].Truncated)
		}
		if len(ref[i].MeanPerLayer) != e.Config.NumLayers {
			t.Errorf("cache per layer %v, want %d layers", ref[i].MeanPerLayer, e.Config.NumLayers)
		}
	}

	variants := []Variant{
		{Policy: "full"},
		{Policy: "evaltest_count"},
		{Policy: "h2o", Budget: policy.Budget{Tokens: 1024}},
		{Policy: "streaming", Budget: policy.Budget{Tokens: 64}},
	}
	out := t.TempDir()
	cfg := Config{Scorer: &Scorer{Engine: e, Tokenizer: tok, Workers: 2}, Tasks: tasks, Variants: variants, OutDir: out, SVG: true,
		Run: provenance.Run{Model: modelid.ID{Name: "/models/tiny", Hash: "sha256:0123456789abcdef"}, Backend: "go", DType: "float32", Chunk: 128}}
	before := sessionsRun.Load()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := sessionsRun.Load() - before; got != int64(len(samples)) {
		t.Errorf("counting policy ran %d sessions, want %d", got, len(samples))
	}
	if rep.Ran != len(samples)*len(variants) || rep.Resumed != 0 {
		t.Errorf("ran %d resumed %d, want %d and 0", rep.Ran, rep.Resumed, len(samples)*len(variants))
	}
	rows := map[string]Row{}
	for _, r := range rep.Summary {
		rows[r.Label()] = r
	}
	for _, label := range []string{"full", "evaltest_count", "h2o@1024"} {
		r := rows[label]
		if r.Normalized == nil || math.Abs(*r.Normalized-1) > 1e-12 || math.Abs(r.Score-100) > 1e-9 {
			t.Errorf("%s: score %v normalised %v, want 100 and 1 (same cache as the reference)", label, r.Score, r.Normalized)
		}
	}
	// streaming@64 evicts: recompute its normalised score from its predictions.
	var sum float64
	for _, r := range rep.Samples {
		if r.Policy == "streaming" {
			s, err := metric.Score("qa_f1", r.Prediction, r.Answers, nil)
			if err != nil {
				t.Fatal(err)
			}
			sum += s
			if r.PeakKVTokens > 64*e.Config.NumLayers+e.ChunkSize()*e.Config.NumLayers {
				t.Errorf("streaming@64 peak %d tokens over all layers", r.PeakKVTokens)
			}
			if r.MeanKVTokens > 64 {
				t.Errorf("streaming@64 mean KV tokens %v > 64", r.MeanKVTokens)
			}
		}
	}
	st := rows["streaming@64"]
	if st.Normalized == nil || math.Abs(*st.Normalized-sum/float64(len(samples))) > 1e-9 {
		t.Errorf("streaming@64 normalised %v, want %v", st.Normalized, sum/float64(len(samples)))
	}

	// Files: results.json parses and holds every sample; no temp files left;
	// plots decode as PNG.
	checkOutputs(t, out, len(samples)*len(variants))

	// Resume: nothing runs again, the results are the same.
	before = sessionsRun.Load()
	rep2, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Ran != 0 || rep2.Resumed != len(samples)*len(variants) || sessionsRun.Load() != before {
		t.Errorf("resume ran %d (sessions %d), resumed %d", rep2.Ran, sessionsRun.Load()-before, rep2.Resumed)
	}
	if !reflect.DeepEqual(rep.Samples, rep2.Samples) {
		t.Errorf("resumed results differ from the first run's")
	}

	// A run cut short: keep the first 5 journal lines and half of the 6th.
	journal := filepath.Join(out, JournalFile)
	data, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	torn := append(bytes.Join(lines[:5], nil), lines[5][:len(lines[5])/2]...)
	if err := os.WriteFile(journal, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	var gone []SampleResult
	for _, l := range lines[5:] {
		var r SampleResult
		if len(bytes.TrimSpace(l)) > 0 {
			if err := json.Unmarshal(l, &r); err != nil {
				t.Fatal(err)
			}
			gone = append(gone, r)
		}
	}
	wantCount := 0
	for _, r := range gone {
		if r.Policy == "evaltest_count" {
			wantCount++
		}
	}
	before = sessionsRun.Load()
	rep3, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep3.Ran != len(gone) || rep3.Resumed != 5 {
		t.Errorf("after a torn journal: ran %d resumed %d, want %d and 5", rep3.Ran, rep3.Resumed, len(gone))
	}
	if got := sessionsRun.Load() - before; got != int64(wantCount) {
		t.Errorf("counting policy ran %d sessions after the torn journal, want %d", got, wantCount)
	}
	checkOutputs(t, out, len(samples)*len(variants))
	// Greedy decoding is deterministic: the rerun samples predict the same.
	for i := range rep.Samples {
		if rep.Samples[i].Prediction != rep3.Samples[i].Prediction || rep.Samples[i].Score != rep3.Samples[i].Score {
			t.Errorf("sample %s %s: rerun predicted %q, first run %q", rep.Samples[i].ID, rep.Samples[i].Policy, rep3.Samples[i].Prediction, rep.Samples[i].Prediction)
		}
	}

	// The same model content at another path (or run from another
	// directory) resumes; other content at the same path is refused.
	cfg.Run.Model.Name = "/elsewhere/tiny"
	if rep4, err := Run(context.Background(), cfg); err != nil || rep4.Ran != 0 {
		t.Errorf("the same model at another path: ran %v, %v; want everything resumed", rep4, err)
	}
	cfg.Run.Model = modelid.ID{Name: "/models/tiny", Hash: "sha256:fedcba9876543210"}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "another run") {
		t.Errorf("a different model resumed into the same directory: %v", err)
	}
}

// checkOutputs verifies results.json, the journal's line count, the absence
// of temporary files, and that both plots decode as PNG images with content.
func checkOutputs(t *testing.T, dir string, n int) {
	t.Helper()
	var res Results
	data, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(res.Samples) != n || len(res.Summary) == 0 || res.Model == "" {
		t.Errorf("results.json: %d samples (want %d), %d summary rows, model %q", len(res.Samples), n, len(res.Summary), res.Model)
	}
	// Provenance: the model by name and content, the settings, the build,
	// and each policy with the options in effect.
	if res.Run.Model.Name == "" || res.Run.Model.Hash != res.Model || res.Run.DType == "" || res.Run.Backend == "" || res.Run.Namm.Go == "" {
		t.Errorf("results.json run: %+v", res.Run)
	}
	for _, p := range res.Policies {
		if p.Name == "" || p.Label == "h2o@1024" && !strings.Contains(p.Name, "1024") {
			t.Errorf("policy %+v", p)
		}
	}
	if len(res.Policies) == 0 {
		t.Error("results.json lists no policies")
	}
	for _, p := range res.Policies {
		if p.Fingerprint != "" {
			t.Errorf("policy %s without learned parameters has fingerprint %q", p.Label, p.Fingerprint)
		}
	}
	checkCSV(t, dir, &res)
	for _, s := range res.Samples {
		if s.ID == "" || s.Task == "" || len(s.Answers) == 0 || len(s.MeanPerLayer) == 0 || s.PromptTokens == 0 || s.Seconds <= 0 {
			t.Errorf("results.json sample incomplete: %+v", s)
		}
	}
	j, err := os.ReadFile(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if c := bytes.Count(j, []byte("\n")); c != n {
		t.Errorf("journal has %d lines, want %d", c, n)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	for _, name := range []string{ScorePlotFile, LayerPlotFile} {
		svg := strings.TrimSuffix(name, ".png") + ".svg"
		if data, err := os.ReadFile(filepath.Join(dir, svg)); err != nil {
			t.Error(err)
		} else if err := xml.Unmarshal(data, new(struct{ XMLName xml.Name })); err != nil || !bytes.Contains(data, []byte("<svg")) {
			t.Errorf("%s is not SVG: %v", svg, err)
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b := img.Bounds()
		if b.Dx() < 400 || b.Dy() < 200 {
			t.Errorf("%s is %dx%d", name, b.Dx(), b.Dy())
		}
		// Lines and text in several colours, not a blank canvas.
		colours := map[[4]uint32]bool{}
		for y := b.Min.Y; y < b.Max.Y; y += 3 {
			for x := b.Min.X; x < b.Max.X; x += 3 {
				r, g, bl, a := img.At(x, y).RGBA()
				colours[[4]uint32{r, g, bl, a}] = true
			}
		}
		if len(colours) < 5 {
			t.Errorf("%s has %d colours: blank?", name, len(colours))
		}
		// Nothing drawn at the edges (a title, legend marker or tick label
		// cut off there): a band of 5 pixels around the image is background.
		bg := img.At(b.Min.X, b.Min.Y)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if x-b.Min.X >= 5 && b.Max.X-x > 5 && y-b.Min.Y >= 5 && b.Max.Y-y > 5 {
					continue
				}
				if img.At(x, y) != bg {
					t.Errorf("%s: pixel (%d, %d) at the edge is drawn: something is cut off", name, x, y)
					y = b.Max.Y
					break
				}
			}
		}
	}
}

func TestNormalizedScore(t *testing.T) {
	r := func(task, id string, s float64) SampleResult { return SampleResult{Task: task, ID: id, Score: s} }
	ref := []SampleResult{r("A", "1", 1), r("A", "2", 0.5), r("B", "1", 0.8), r("C", "1", 0)}
	res := []SampleResult{r("A", "1", 0.5), r("A", "2", 0.25), r("B", "1", 0.6), r("B", "9", 1), r("C", "1", 0.4)}
	got, n := NormalizedScore(res, ref)
	// A: 0.75/1.5 = 0.5; B: 0.6/0.8 = 0.75 (sample 9 has no reference); C: reference 0, left out.
	if n != 2 || math.Abs(got-(0.5+0.75)/2) > 1e-12 {
		t.Errorf("NormalizedScore = %v over %d tasks, want 0.625 over 2", got, n)
	}
	if got, n := NormalizedScore(res[4:], ref); n != 0 || !math.IsNaN(got) {
		t.Errorf("only a zero reference: %v %d", got, n)
	}
}

// TestBatchedScoresMatchOneByOne: samples scored three to a pass give the
// predictions, scores and cache figures of the same samples scored one at a
// time, for the full cache and an evicting policy.
func TestBatchedScoresMatchOneByOne(t *testing.T) {
	e, tok := tiny(t)
	samples := shortSamples(t, "niah_single:len=256:n=5", 8)[0].Samples
	for _, spec := range []string{"full", "h2o"} {
		newPolicy := func() (policy.Policy, error) {
			if spec == "full" {
				return policy.New(spec, policy.Budget{})
			}
			return policy.New(spec, policy.Budget{Tokens: 64})
		}
		one, err := (&Scorer{Engine: e, Tokenizer: tok}).ScoreAll(context.Background(), samples, newPolicy, nil)
		if err != nil {
			t.Fatal(err)
		}
		batched, err := (&Scorer{Engine: e, Tokenizer: tok, Batch: 3}).ScoreAll(context.Background(), samples, newPolicy, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range samples {
			a, b := batched[i], one[i]
			if a.Prediction != b.Prediction || a.Score != b.Score || a.PeakKVBytes != b.PeakKVBytes ||
				a.PeakKVTokens != b.PeakKVTokens || a.MeanKVTokens != b.MeanKVTokens || !slices.Equal(a.FinalPerLayer, b.FinalPerLayer) {
				t.Errorf("%s sample %d: batched %+v\none by one %+v", spec, i, a, b)
			}
		}
	}
}

// checkCSV reads summary.csv and samples.csv back and compares each row with
// results.json's.
func checkCSV(t *testing.T, dir string, res *Results) {
	t.Helper()
	read := func(name string) [][]string {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return recs
	}
	sum := read(SummaryCSVFile)
	if len(sum) != len(res.Summary)+1 || sum[0][0] != "task" || sum[0][4] != "score" {
		t.Fatalf("summary.csv: %d rows, header %v; want %d rows", len(sum), sum[0], len(res.Summary)+1)
	}
	for i, r := range res.Summary {
		rec := sum[i+1]
		score, err := strconv.ParseFloat(rec[4], 64)
		if rec[0] != r.Task || rec[1] != r.Policy || rec[2] != r.Budget || err != nil || score != r.Score {
			t.Errorf("summary.csv row %d %v, results.json %+v", i+1, rec, r)
		}
		if (rec[5] == "") != (r.Normalized == nil) {
			t.Errorf("summary.csv row %d normalised %q, results.json %v", i+1, rec[5], r.Normalized)
		}
		for j, x := range []*float64{r.ScoreLow, r.ScoreHigh, r.NormalizedLow, r.NormalizedHigh, r.DiffLow, r.DiffHigh} {
			if got, want := rec[10+j], optional(x); got != want {
				t.Errorf("summary.csv row %d %s %q, results.json %q", i+1, sum[0][10+j], got, want)
			}
		}
	}
	smp := read(SamplesCSVFile)
	if len(smp) != len(res.Samples)+1 {
		t.Fatalf("samples.csv: %d rows, want %d", len(smp), len(res.Samples)+1)
	}
	for i, r := range res.Samples {
		rec := smp[i+1]
		if rec[0] != r.Task || rec[1] != r.ID || rec[2] != r.Policy || rec[6] != r.Prediction || rec[7] != strconv.Itoa(r.PromptTokens) {
			t.Errorf("samples.csv row %d %v, results.json %+v", i+1, rec, r)
		}
	}
}
