package gen

import (
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func generate(t *testing.T, s string) []Sample {
	t.Helper()
	spec, err := ParseSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(spec, wordCounter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != spec.N {
		t.Fatalf("%s: %d samples, want %d", s, len(out), spec.N)
	}
	return out
}

var allTaskSpecs = []string{
	"niah_single:n=4", "niah_single:n=4:haystack=noise:needle=uuid", "niah_single:n=4:needle=word:key=number",
	"niah_multikey:n=4", "niah_multikey:n=4:haystack=needle:key=uuid:needle=uuid",
	"niah_multivalue:n=4", "niah_multiquery:n=4:haystack=noise", "vartrack:n=4",
	"vartrack:n=4:haystack=essay:chains=3:hops=2", "cwe:n=4", "fwe:n=4", "qa:n=4",
	"passage_retrieval:n=4", "passage_count:n=4", "facts:n=4", "facts:n=4:kind=list:distractors=20", "records:n=4",
	"locate:n=4",
}

func TestEveryTaskHasASpec(t *testing.T) {
	covered := map[string]bool{}
	for _, s := range allTaskSpecs {
		covered[strings.Split(s, ":")[0]] = true
	}
	for _, info := range Tasks() {
		if !covered[info.Name] {
			t.Errorf("task %s is not in allTaskSpecs", info.Name)
		}
	}
	if len(Tasks()) != 13 {
		t.Errorf("%d tasks, want 13", len(Tasks()))
	}
}

func TestDeterministicAndDistinct(t *testing.T) {
	for _, s := range allTaskSpecs {
		s += ":len=1500"
		a, b := generate(t, s), generate(t, s)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two runs differ", s)
		}
		other := generate(t, s+":seed=2")
		seen := map[string]bool{}
		for i, x := range a {
			if seen[x.Prompt] || seen[x.ID] {
				t.Errorf("%s: sample %d repeats an earlier prompt or ID", s, i)
			}
			seen[x.Prompt], seen[x.ID] = true, true
			if x.Prompt == other[i].Prompt {
				t.Errorf("%s: seed 2 gives the same sample %d", s, i)
			}
		}
	}
}

// checkCommon asserts what every sample promises: length, answers, metric, prefix.
func checkCommon(t *testing.T, s string, x Sample, target int) {
	t.Helper()
	n := len(wordCounter{}.Encode(x.Prompt, true))
	if n != x.Length {
		t.Errorf("%s: Length %d, but the prompt has %d tokens", s, x.Length, n)
	}
	if n > target || float64(n) < 0.98*float64(target) {
		t.Errorf("%s: %d tokens, want within 2%% below %d", s, n, target)
	}
	if len(x.Answers) == 0 {
		t.Errorf("%s: no answers", s)
	}
	for _, a := range x.Answers {
		if strings.TrimSpace(a) == "" {
			t.Errorf("%s: empty answer", s)
		}
	}
	if x.AnswerPrefix == "" || !strings.HasSuffix(x.Prompt, x.AnswerPrefix) {
		t.Errorf("%s: prompt does not end with its answer prefix %q", s, x.AnswerPrefix)
	}
	if strings.TrimRight(x.Prompt, " \n") != x.Prompt {
		t.Errorf("%s: prompt ends with whitespace", s)
	}
	if x.Metric == "" || x.MaxNewTokens <= 0 {
		t.Errorf("%s: metric %q, max new tokens %d", s, x.Metric, x.MaxNewTokens)
	}
}

func TestLengthWithinTolerance(t *testing.T) {
	for _, target := range []int{2000, 8192} {
		for _, s := range allTaskSpecs {
			s := s + ":len=" + strconv.Itoa(target)
			for _, x := range generate(t, s) {
				checkCommon(t, s, x, target)
			}
		}
	}
}

func TestLongSampleIsFast(t *testing.T) {
	for _, s := range []string{"niah_single:len=32768:n=1", "qa:len=32768:n=1", "cwe:len=32768:n=1", "passage_count:len=32768:n=1"} {
		begin := time.Now()
		x := generate(t, s)[0]
		took := time.Since(begin)
		checkCommon(t, s, x, 32768)
		t.Logf("%s: %v", s, took)
		if took > 2*time.Second {
			t.Errorf("%s took %v", s, took)
		}
	}
}

var needleRE = regexp.MustCompile(`One of the special magic (numbers|uuids|words) for ([\w-]+) is: ([\w-]+)\.`)

func TestNIAHNeedles(t *testing.T) {
	for _, s := range []string{
		"niah_single:len=3000:n=6", "niah_single:len=3000:n=3:haystack=noise:needle=uuid:key=uuid",
		"niah_multikey:len=3000:n=3:keys=6", "niah_multikey:len=3000:n=3:haystack=needle",
		"niah_multivalue:len=3000:n=3:values=5", "niah_multiquery:len=3000:n=3:queries=3:needle=word",
	} {
		for _, x := range generate(t, s) {
			q := x.Prompt[strings.LastIndex(x.Prompt, "\nWhat "):]
			m := regexp.MustCompile(`for (.+) mentioned in the provided text\?`).FindStringSubmatch(q)
			if m == nil {
				t.Fatalf("%s: no question in %q", s, q)
			}
			asked := strings.Split(strings.ReplaceAll(m[1], ", and ", ", "), ", ")
			values := map[string][]string{} // key -> values, in the context
			for _, n := range needleRE.FindAllStringSubmatch(x.Prompt, -1) {
				values[n[2]] = append(values[n[2]], n[3])
			}
			var want []string
			for _, k := range asked {
				if len(values[k]) == 0 {
					t.Errorf("%s: asked key %q has no needle", s, k)
				}
				want = append(want, values[k]...)
			}
			sort.Strings(want)
			got := append([]string(nil), x.Answers...)
			sort.Strings(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: answers %v, but the needles of %v hold %v", s, got, asked, want)
			}
			for _, a := range x.Answers {
				if c := strings.Count(x.Prompt, a); c != 1 {
					t.Errorf("%s: answer %q occurs %d times", s, a, c)
				}
			}
		}
	}
}

func TestNIAHDepthsSpread(t *testing.T) {
	const n = 10
	xs := generate(t, "niah_single:len=2000:n=10")
	var depths []float64
	for _, x := range xs {
		depths = append(depths, x.Depth)
		// the needle sits near its nominal depth in the context
		body := x.Prompt[strings.Index(x.Prompt, "\n")+1 : strings.LastIndex(x.Prompt, "\nWhat ")]
		at := float64(strings.Index(body, "One of the special magic")) / float64(len(body))
		if math.Abs(at-x.Depth) > 0.1 {
			t.Errorf("needle at %.2f of the context, depth says %.2f", at, x.Depth)
		}
	}
	sort.Float64s(depths)
	for i, d := range depths {
		if d < float64(i)/n || d >= float64(i+1)/n {
			t.Errorf("depth %d of %d is %.3f, outside its stratum", i, n, d)
		}
	}
}

var (
	assignRE  = regexp.MustCompile(`VAR ([A-Z]{5}) = (?:VAR ([A-Z]{5})|(\d+))`)
	vtQueryRE = regexp.MustCompile(`Question: Find all variables that are assigned the value (\d+) in the text above\.`)
)

// vtSolve walks the assignments of one vartrack question in order, independently of the generator.
func vtSolve(t *testing.T, text string) (query string, bound []string) {
	m := vtQueryRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no vartrack question in %q", text)
	}
	value := map[string]string{}
	for _, a := range assignRE.FindAllStringSubmatch(text, -1) {
		if a[3] != "" {
			value[a[1]] = a[3]
		} else if v, ok := value[a[2]]; ok {
			value[a[1]] = v
		} else {
			t.Errorf("VAR %s refers to %s before it is assigned", a[1], a[2])
		}
	}
	for k, v := range value {
		if v == m[1] {
			bound = append(bound, k)
		}
	}
	sort.Strings(bound)
	return m[1], bound
}

func TestVartrackChains(t *testing.T) {
	for _, s := range []string{"vartrack:len=3000:n=4", "vartrack:len=3000:n=3:chains=4:hops=6:haystack=essay"} {
		for _, x := range generate(t, s) {
			// The prompt holds a solved example, then the question.
			cut := strings.LastIndex(x.Prompt, "Memorize and track")
			example, question := x.Prompt[:cut], x.Prompt[cut:]
			_, exBound := vtSolve(t, example)
			exAnswer := example[strings.LastIndex(example, "they are: ")+len("they are: "):]
			exGot := strings.Fields(exAnswer)
			sort.Strings(exGot)
			if !reflect.DeepEqual(exGot, exBound) {
				t.Errorf("%s: example answers %v, chain says %v", s, exGot, exBound)
			}
			_, bound := vtSolve(t, question)
			got := append([]string(nil), x.Answers...)
			sort.Strings(got)
			if !reflect.DeepEqual(got, bound) {
				t.Errorf("%s: answers %v, walking the chains gives %v", s, got, bound)
			}
		}
	}
}

// lastNumberedList parses the final "1. w 2. w ..." list of a cwe prompt.
func lastNumberedList(prompt string) []string {
	body := prompt[:strings.LastIndex(prompt, "\nQuestion:")]
	body = body[strings.LastIndex(body, "\n")+1:]
	f := strings.Fields(body)
	var words []string
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] != strconv.Itoa(len(words)+1)+"." {
			return nil
		}
		words = append(words, f[i+1])
	}
	return words
}

// topByCount returns the k most frequent words and the count just below them.
func topByCount(words []string, k int) (top []string, counts []int, next int) {
	c := map[string]int{}
	for _, w := range words {
		c[w]++
	}
	var all []string
	for w := range c {
		all = append(all, w)
	}
	sort.Slice(all, func(i, j int) bool { return c[all[i]] > c[all[j]] || c[all[i]] == c[all[j]] && all[i] < all[j] })
	for _, w := range all[:k] {
		counts = append(counts, c[w])
	}
	if len(all) > k {
		next = c[all[k]]
	}
	top = all[:k]
	sort.Strings(top)
	return top, counts, next
}

func TestCWECounts(t *testing.T) {
	for _, s := range []string{"cwe:len=2000:n=3", "cwe:len=6000:n=2", "cwe:len=3000:n=2:num_cw=5:freq_cw=9:freq_ucw=2"} {
		for _, x := range generate(t, s) {
			words := lastNumberedList(x.Prompt)
			if len(words) == 0 {
				t.Fatalf("%s: no numbered list", s)
			}
			top, counts, next := topByCount(words, len(x.Answers))
			want := append([]string(nil), x.Answers...)
			sort.Strings(want)
			if !reflect.DeepEqual(top, want) || counts[len(counts)-1] <= next {
				t.Errorf("%s: counted top %v (counts %v, next %d), answers %v", s, top, counts, next, want)
			}
		}
	}
}

func TestFWECounts(t *testing.T) {
	for _, s := range []string{"fwe:len=2000:n=3", "fwe:len=8000:n=2:alpha=1.5"} {
		for _, x := range generate(t, s) {
			body := x.Prompt[strings.Index(x.Prompt, "coded words. ")+len("coded words. ") : strings.LastIndex(x.Prompt, "\nQuestion:")]
			var words []string
			for _, w := range strings.Fields(body) {
				if w != "..." {
					words = append(words, w)
				}
			}
			top, counts, next := topByCount(words, 3)
			want := append([]string(nil), x.Answers...)
			sort.Strings(want)
			if !reflect.DeepEqual(top, want) || counts[2] <= next {
				t.Errorf("%s: counted top %v (counts %v, next %d), answers %v", s, top, counts, next, want)
			}
		}
	}
}

var paragraphRE = regexp.MustCompile(`(?m)^Paragraph (\d+): (.*)$`)

func TestPassageCount(t *testing.T) {
	for _, s := range []string{"passage_count:len=3000:n=5", "passage_count:len=6000:n=3:paragraphs=30"} {
		for _, x := range generate(t, s) {
			ps := paragraphRE.FindAllStringSubmatch(x.Prompt, -1)
			unique := map[string]bool{}
			for i, p := range ps {
				if p[1] != strconv.Itoa(i+1) {
					t.Errorf("%s: paragraph %d is numbered %s", s, i+1, p[1])
				}
				unique[p[2]] = true
			}
			if want := strconv.Itoa(len(unique)); x.Answers[0] != want {
				t.Errorf("%s: answer %s, but %d of %d paragraphs are unique", s, x.Answers[0], len(unique), len(ps))
			}
		}
	}
}

func TestPassageRetrieval(t *testing.T) {
	for _, x := range generate(t, "passage_retrieval:len=4000:n=6") {
		ps := paragraphRE.FindAllStringSubmatch(x.Prompt, -1)
		abs := x.Prompt[strings.Index(x.Prompt, "The following is an abstract.\n\n")+len("The following is an abstract.\n\n"):]
		abs = abs[:strings.Index(abs, "\n\n")]
		// Every sentence of the abstract is in the answer paragraph and in no other.
		for _, sent := range regexp.MustCompile(`[^.!?]+[.!?]["')_]*`).FindAllString(abs, -1) {
			sent = strings.TrimSpace(sent)
			if len(strings.Fields(sent)) < 4 { // a split at "Mr." and the like
				continue
			}
			var in []string
			for _, p := range ps {
				if strings.Contains(p[2], sent) {
					in = append(in, "Paragraph "+p[1])
				}
			}
			if len(in) != 1 || in[0] != x.Answers[0] {
				t.Errorf("abstract sentence %q is in %v, answer %s", sent, in, x.Answers[0])
			}
		}
	}
}

func TestQAFact(t *testing.T) {
	for _, x := range generate(t, "qa:len=3000:n=10:distractors=6") {
		q := x.Prompt[strings.LastIndex(x.Prompt, "Question: ")+len("Question: "):]
		q = strings.TrimSuffix(q, " Answer:")
		// Find the relation by its question, then the one fact about the asked subject.
		found := 0
		for _, rel := range relations {
			pre, post, _ := strings.Cut(rel.question, "{s}")
			if !strings.HasPrefix(q, pre) || !strings.HasSuffix(q, post) {
				continue
			}
			subject := q[len(pre) : len(q)-len(post)]
			fpre, fmid, _ := strings.Cut(rel.fact, "{s}")
			fmid, fpost, _ := strings.Cut(fmid, "{a}")
			re := regexp.MustCompile(regexp.QuoteMeta(fpre) + `(.+?)` + regexp.QuoteMeta(fmid) + `(.+?)` + regexp.QuoteMeta(fpost))
			facts := re.FindAllStringSubmatch(x.Prompt, -1)
			if len(facts) != 7 {
				t.Errorf("%d facts, want 7 (1 + 6 distractors)", len(facts))
			}
			for _, f := range facts {
				if f[1] == subject {
					found++
					if f[2] != x.Answers[0] {
						t.Errorf("fact about %s says %s, answer %s", subject, f[2], x.Answers[0])
					}
				}
			}
		}
		if found != 1 {
			t.Errorf("question %q: %d facts about its subject", q, found)
		}
	}
}

func TestZeta(t *testing.T) {
	for _, c := range []struct{ s, want float64 }{{2, math.Pi * math.Pi / 6}, {3, 1.2020569031595942}, {4, math.Pow(math.Pi, 4) / 90}, {1.5, 2.612375348685488}} {
		if got := zeta(c.s); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("zeta(%g) = %.12f, want %.12f", c.s, got, c.want)
		}
	}
}

func TestParseSpec(t *testing.T) {
	s, err := ParseSpec("niah_multikey:len=8192:n=50:seed=7:haystack=needle:keys=3")
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Task: "niah_multikey", Length: 8192, N: 50, Seed: 7, Options: map[string]string{"haystack": "needle", "keys": "3"}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if back, err := ParseSpec(s.String()); err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("String %q does not round-trip: %+v, %v", s.String(), back, err)
	}
	d, _ := ParseSpec("cwe")
	if d.Length != DefaultLength || d.N != DefaultN || d.Seed != DefaultSeed {
		t.Errorf("defaults: %+v", d)
	}
	for _, c := range []struct{ in, mention string }{
		{"niah_singel:len=10", "niah_single"},   // unknown task lists the valid names
		{"niah_single:haystak=noise", "needle"}, // unknown key lists the valid keys
		{"niah_single:haystack=ocean", "essay"},
		{"niah_single:len=abc", "len"},
		{"niah_single:len=5", "len"},
		{"niah_single:n=0", "n="},
		{"niah_single:seed", "key=value"},
		{"cwe:num_cw=x", "num_cw"},
		{"fwe:alpha=1", "alpha"},
		{"qa:texts=nope", "austen-emma"},
		{"qa:split=test", "split"},
		{"qa:docwords=5:docwords=6", "twice"},
	} {
		_, err := ParseSpec(c.in)
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("ParseSpec(%q) error %v, want one mentioning %q", c.in, err, c.mention)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	if _, err := Generate(Spec{Task: "niah_single", Length: 20, N: 1}, wordCounter{}); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("tiny len: %v", err)
	}
	if _, err := Generate(Spec{Task: "passage_count", Length: 400000, N: 1}, wordCounter{}); err == nil || !strings.Contains(err.Error(), "ran out") {
		t.Errorf("haystack too small: %v", err)
	}
	if _, err := Generate(Spec{Task: "nope", Length: 2000, N: 1}, wordCounter{}); err == nil {
		t.Error("unknown task accepted")
	}
}

func TestTrainSplitDiffers(t *testing.T) {
	a := generate(t, "niah_single:len=1000:n=1:texts=carroll-alice")[0]
	b := generate(t, "niah_single:len=1000:n=1:texts=carroll-alice:split=train")[0]
	if a.Prompt == b.Prompt {
		t.Error("train and eval splits gave the same prompt")
	}
	eval := generate(t, "qa:len=2000:n=1:texts=carroll-alice")[0]
	if !strings.Contains(eval.Prompt, "Alice") {
		t.Error("texts=carroll-alice did not use Alice")
	}
}

func TestSuites(t *testing.T) {
	for _, name := range SuiteNames() {
		specs, ok := Suite(name)
		if !ok || len(specs) == 0 {
			t.Errorf("suite %s is empty", name)
		}
	}
	if _, ok := Suite("nope"); ok {
		t.Error("unknown suite found")
	}
	for _, s := range mustSuite(t, "quick") {
		if _, err := Generate(s, wordCounter{}); err != nil {
			t.Error(err)
		}
	}
}

func mustSuite(t *testing.T, name string) []Spec {
	s, ok := Suite(name)
	if !ok {
		t.Fatalf("no suite %s", name)
	}
	return s
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"niah_single:len=8192:n=5", "cwe:num_cw=3", "qa:texts=sotu+carroll-alice:split=train", "x:y", ":::", "fwe:alpha=1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseSpec(s)
		if err != nil {
			return
		}
		back, err := ParseSpec(spec.String())
		if err != nil || back.String() != spec.String() {
			t.Errorf("%q -> %q does not round-trip: %v", s, spec.String(), err)
		}
	})
}

// callCounter counts Encode calls and encoded bytes.
type callCounter struct {
	calls, bytes int
}

func (c *callCounter) Encode(text string, addSpecial bool) []int {
	c.calls++
	c.bytes += len(text)
	return wordCounter{}.Encode(text, addSpecial)
}

// The fit reuses what it learned from the previous sample: few whole-prompt tokenizations.
func TestFewTokenizationsPerSample(t *testing.T) {
	for _, s := range allTaskSpecs {
		spec, _ := ParseSpec(s + ":len=16000:n=10")
		c := &callCounter{}
		if _, err := Generate(spec, c); err != nil {
			t.Fatal(err)
		}
		perSample := float64(c.bytes) / float64(spec.N) / float64(16000*4)
		t.Logf("%s: %.1f Encode calls, ~%.1f prompt lengths tokenized per sample", s, float64(c.calls)/10, perSample)
		if perSample > 6 {
			t.Errorf("%s: %.1f prompt lengths tokenized per sample", s, perSample)
		}
	}
}

// TestSampleContextAndInput: the tasks with a LongBench-style split fill Context and Input with
// substrings of Prompt, the context before the input's last occurrence (passage_count's input is
// its template's and stays empty); the others leave both empty.
func TestSampleContextAndInput(t *testing.T) {
	split := map[string]bool{"qa": true, "passage_retrieval": true, "passage_count": true, "facts": true, "records": true, "locate": true}
	for _, s := range allTaskSpecs {
		for _, x := range generate(t, s+":len=1500") {
			if !split[x.Task] {
				if x.Context != "" || x.Input != "" {
					t.Errorf("%s: Context %q, Input %q, want both empty", x.ID, x.Context, x.Input)
				}
				continue
			}
			at := strings.Index(x.Prompt, x.Context)
			if x.Context == "" || at < 0 {
				t.Errorf("%s: Context %q is empty or not in the prompt", x.ID, x.Context)
				continue
			}
			if x.Task == "passage_count" {
				if x.Input != "" {
					t.Errorf("%s: Input %q, want empty", x.ID, x.Input)
				}
				continue
			}
			if x.Input == "" || strings.LastIndex(x.Prompt, x.Input) < at+len(x.Context) {
				t.Errorf("%s: Input %q is empty or not in the prompt after the context", x.ID, x.Input)
			}
			if len(x.Context) < len(x.Prompt)/2 {
				t.Errorf("%s: Context has %d of the prompt's %d bytes, want most of them", x.ID, len(x.Context), len(x.Prompt))
			}
		}
	}
	// Exact parts where the template is fixed.
	x := generate(t, "passage_retrieval:len=1500:n=1")[0]
	if !strings.HasPrefix(x.Context, "Paragraph 1: ") || strings.Contains(x.Context, "The following is an abstract") {
		t.Errorf("passage_retrieval Context = %.80q..., want the paragraphs alone", x.Context)
	}
	x = generate(t, "qa:len=1500:n=1")[0]
	if !strings.HasPrefix(x.Context, "Document 1:\n") || !strings.HasPrefix(x.Input, "Wh") || !strings.HasSuffix(x.Input, "?") {
		t.Errorf("qa Context = %.40q..., Input = %q, want the documents and the question", x.Context, x.Input)
	}
}
