package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/namm-dev/namm/task/gen/haystack"
	"github.com/namm-dev/namm/tokenizer"
)

func loadTok(t *testing.T, name string) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.LoadDir(filepath.Join("..", "testdata", "tokenizers", name))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The header and tokens read back by Python's struct module (what train_base.py mirrors with
// numpy), for both token widths.
func TestTokenFilePython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	for _, vocab := range []int{300, 70000} {
		f := NewTokenFile(TokenHeader{VocabSize: vocab, SeqLen: 5, Count: 3, BOS: 1, EOS: -1})
		want := [][]int{{1, 2, 3, 4, 5}, {1, vocab - 1, 0, 7, 8}, {1, 255, 256, 257, 299}}
		for i, s := range want {
			if err := f.SetSeq(i, s); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(t.TempDir(), "x.bin")
		if err := f.Write(path); err != nil {
			t.Fatal(err)
		}
		script := `
import struct, sys, json
b = open(sys.argv[1], "rb").read()
magic, ver, vocab, L, width, count, bos, eos = struct.unpack("<8sIIIIQii", b[:40])
fmt = "<" + ("H" if width == 2 else "I") * (L * count)
toks = struct.unpack(fmt, b[64:])
print(json.dumps({"magic": magic.decode(), "ver": ver, "vocab": vocab, "L": L, "width": width,
  "count": count, "bos": bos, "eos": eos, "seqs": [list(toks[i*L:(i+1)*L]) for i in range(count)]}))
`
		out, err := exec.Command("python3", "-c", script, path).CombinedOutput()
		if err != nil {
			t.Fatalf("python3: %v\n%s", err, out)
		}
		var got struct {
			Magic                                 string
			Ver, Vocab, L, Width, Count, BOS, EOS int
			Seqs                                  [][]int
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err, string(out))
		}
		wantWidth := 2
		if vocab >= 65536 {
			wantWidth = 4
		}
		if got.Magic != TokenFileMagic || got.Ver != 1 || got.Vocab != vocab || got.L != 5 || got.Width != wantWidth || got.Count != 3 || got.BOS != 1 || got.EOS != -1 {
			t.Errorf("vocab %d: python read header %+v", vocab, got)
		}
		for i := range want {
			if !slices.Equal(got.Seqs[i], want[i]) {
				t.Errorf("vocab %d seq %d: python read %v, want %v", vocab, i, got.Seqs[i], want[i])
			}
		}
		back, err := ReadTokenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if !slices.Equal(back.Seq(i), want[i]) {
				t.Errorf("vocab %d seq %d: read back %v, want %v", vocab, i, back.Seq(i), want[i])
			}
		}
	}
}

func TestTokenFileErrors(t *testing.T) {
	f := NewTokenFile(TokenHeader{VocabSize: 10, SeqLen: 2, Count: 1, BOS: -1, EOS: -1})
	if err := f.SetSeq(0, []int{1}); err == nil {
		t.Error("short sequence accepted")
	}
	if err := f.SetSeq(0, []int{1, 10}); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("token 10 of vocab 10: %v", err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.bin")
	if err := f.Write(good); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	cases := map[string][]byte{
		"magic":     append([]byte("NOTATOKS"), data[8:]...),
		"truncated": data[:len(data)-1],
		"header":    data[:20],
		"token":     append(append([]byte(nil), data[:TokenHeaderSize]...), 0xff, 0, 0, 0),
	}
	for name, b := range cases {
		p := filepath.Join(dir, name+".bin")
		os.WriteFile(p, b, 0o644)
		if _, err := ReadTokenFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v does not name the file", name, err)
		}
	}
}

// splitAt cuts ids at every occurrence of sep (sep dropped).
func splitAt(ids []int, sep int) [][]int {
	var out [][]int
	start := 0
	for i, id := range ids {
		if id == sep {
			out = append(out, ids[start:i])
			start = i + 1
		}
	}
	return append(out, ids[start:])
}

// Built with Mistral's tokenizer on one short text: deterministic for any number of workers;
// every sequence starts with BOS; text pieces are verbatim train-split text, never eval text;
// synthetic examples end with their answers, a period and EOS.
func TestBuildTrainData(t *testing.T) {
	tok := loadTok(t, "mistral-7b")
	opt := DataOptions{Tokens: 8 * 1024, SeqLen: 1024, Seed: 3, SyntheticFrac: 0.5,
		Texts: []string{"carroll-alice"}, Workers: 1}
	f1, stats, err := BuildTrainData(tok, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Workers = 3
	f3, _, err := BuildTrainData(tok, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f1.data, f3.data) {
		t.Error("1 and 3 workers built different files")
	}
	t.Logf("stats: %+v", stats)
	if stats.Sequences != 8 || stats.SyntheticSequences+stats.TextSequences != 8 {
		t.Errorf("stats %+v", stats)
	}
	if stats.SyntheticSequences == 0 || stats.TextSequences == 0 {
		t.Errorf("want both kinds among 8 sequences at frac 0.5: %+v", stats)
	}
	train, _ := haystack.Split("carroll-alice", haystack.Train)
	eval, _ := haystack.Split("carroll-alice", haystack.Eval)
	bos, eos := 1, 2
	examples := 0
	for i := range f1.Count {
		seq := f1.Seq(i)
		if seq[0] != bos {
			t.Errorf("seq %d starts with %d, not BOS", i, seq[0])
		}
		for _, piece := range splitAt(seq, bos)[1:] {
			parts := splitAt(piece, eos)
			text := tok.Decode(parts[0], false)
			probe := strings.TrimSpace(text)
			if len(probe) > 200 {
				probe = probe[20 : len(probe)-20]
			}
			if strings.Contains(train, probe) {
				if len(probe) > 40 && strings.Contains(eval, probe) {
					t.Errorf("seq %d: text window from the eval split", i)
				}
				continue
			}
			// Not verbatim train text: it must be a task example, answered and closed by EOS.
			examples++
			if len(parts) < 2 {
				t.Errorf("seq %d: example without EOS: ...%q", i, tail(text))
			}
			if !strings.HasSuffix(text, ".") {
				t.Errorf("seq %d: example does not end with its answer and a period: ...%q", i, tail(text))
			}
		}
	}
	if examples == 0 || examples != sum(stats.Examples) {
		t.Errorf("found %d examples in the tokens, stats say %v", examples, stats.Examples)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func tail(s string) string {
	if len(s) > 120 {
		return s[len(s)-120:]
	}
	return s
}

// The validation file is BOS + eval split + EOS cut into sequences.
func TestBuildValData(t *testing.T) {
	tok := loadTok(t, "gpt2")
	f, err := BuildValData(tok, 256, []string{"carroll-alice", "chesterton-brown"})
	if err != nil {
		t.Fatal(err)
	}
	var stream []int
	for i := range f.Count {
		stream = append(stream, f.Seq(i)...)
	}
	evalA, _ := haystack.Split("carroll-alice", haystack.Eval)
	want := append([]int{50256}, tok.Encode(evalA, false)...)
	want = append(want, 50256)
	if !slices.Equal(stream[:len(want)], want) {
		t.Error("validation stream does not start with BOS + carroll-alice eval tokens + EOS")
	}
	if f.Count != (len(want)+len(tok.Encode(mustSplit("chesterton-brown"), false))+2)/256 {
		t.Errorf("count %d", f.Count)
	}
	if _, err := BuildValData(tok, 1<<20, []string{"carroll-alice"}); err == nil {
		t.Error("sequence longer than the eval text accepted")
	}
}

func mustSplit(name string) string {
	s, _ := haystack.Split(name, haystack.Eval)
	return s
}

func TestDataOptionErrors(t *testing.T) {
	tok := loadTok(t, "gpt2")
	for _, o := range []DataOptions{
		{Tokens: 100, SeqLen: 8},
		{Tokens: 10, SeqLen: 64},
		{Tokens: 128, SeqLen: 64, Seed: -1},
		{Tokens: 128, SeqLen: 64, SyntheticFrac: 1.5},
		{Tokens: 128, SeqLen: 64, LongShare: -0.1},
		{Tokens: 128, SeqLen: 64, MaxExample: 600},
		{Tokens: 128, SeqLen: 64, MinExample: 900, MaxExample: 800},
		{Tokens: 128, SeqLen: 64, Texts: []string{"nope"}},
		{Tokens: 128, SeqLen: 64, Tasks: []string{"nope"}},
		{Tokens: 128, SeqLen: 64, Tasks: []string{"facts:kind=nope"}},
		{Tokens: 128, SeqLen: 64, Tasks: []string{"facts:len=900"}},
		{Tokens: 128, SeqLen: 64, Tasks: []string{"facts:wat=1"}},
	} {
		if _, _, err := BuildTrainData(tok, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// The text sequences walk the documents in order: at less than one pass, every document's
// tokens appear at most once, and in full where a window holds a whole document.
func TestTextSequencesWalkTheStream(t *testing.T) {
	tok := loadTok(t, "mistral-7b")
	var docs []Document
	for k := range 40 {
		docs = append(docs, Document{Name: fmt.Sprint("d", k), Text: strings.Repeat(fmt.Sprintf("document %d says hello number %d. ", k, k*7), 3+k%5)})
	}
	f, stats, err := BuildTrainData(tok, DataOptions{Tokens: 1500, SeqLen: 64, Seed: 3, SyntheticFrac: 0, Texts: []string{"carroll-alice"}, Extra: docs, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if stats.TextPasses <= 0 || stats.TextPasses >= 1 {
		t.Fatalf("text passes %.3f, want in (0, 1) for this size", stats.TextPasses)
	}
	var stream []int
	for i := range f.Count {
		seq := f.Seq(i)
		if seq[0] != 1 {
			t.Fatalf("seq %d does not start with BOS", i)
		}
		stream = append(stream, seq[1:]...)
	}
	// The windows are the epoch's stream, token for token: BOS, document, EOS, in its order.
	b, err := newBuilder(tok, DataOptions{Tokens: 1500, SeqLen: 64, Seed: 3, Texts: []string{"carroll-alice"}, Extra: docs, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	order, _ := b.epoch(0)
	var want []int
	for _, k := range order {
		want = append(want, 1)
		for _, id := range b.docs[k].ids {
			want = append(want, int(id))
		}
		want = append(want, 2)
	}
	if len(want) < len(stream) || !slices.Equal(want[:len(stream)], stream) {
		t.Fatalf("the text windows are not the epoch's stream")
	}
	seen := map[string]int{}
	for _, piece := range splitAt(stream, 2)[1 : len(splitAt(stream, 2))-1] { // whole documents between EOS marks
		text := tok.Decode(piece, true)
		seen[text]++
		if seen[text] > 1 {
			t.Fatalf("a document appears twice at %.2f passes: %q", stats.TextPasses, text[:min(60, len(text))])
		}
	}
	if len(seen) < 5 {
		t.Fatalf("only %d whole documents in %d tokens", len(seen), len(stream))
	}
}

// --long-share and --max-example set how examples pack a sequence: all long, one example
// fills each sequence; none long and capped, each sequence holds several short ones.
func TestExampleLengthMix(t *testing.T) {
	tok := loadTok(t, "mistral-7b")
	base := DataOptions{Tokens: 3 * 4096, SeqLen: 4096, Seed: 5, SyntheticFrac: 1, Tasks: []string{"facts"},
		Texts: []string{"carroll-alice"}, Workers: 2}
	long := base
	long.LongShare = 1
	_, st, err := BuildTrainData(tok, long)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Examples["facts"]; n != 3 {
		t.Errorf("long share 1: %d examples in 3 sequences, want one each", n)
	}
	short := base
	short.MaxExample = 900
	_, st, err = BuildTrainData(tok, short)
	if err != nil {
		t.Fatal(err)
	}
	n := st.Examples["facts"]
	// each example takes at most 900 tokens (8% slack) plus its answer: at least 4 per sequence
	if n < 12 {
		t.Errorf("max-example 900, long share 0: %d examples in 3 sequences, want >= 12", n)
	}
	if mean := float64(st.ExampleTokens) / float64(n); mean > 900*1.08+64 {
		t.Errorf("mean example %.0f tokens above the cap", mean)
	}
}

// A task entry may carry its generator's options: every example of "facts:kind=count" asks
// how many times, every one of "facts:kind=collect" asks for all the values, and the
// statistics count each entry by its spec.
func TestTaskOptions(t *testing.T) {
	tok := loadTok(t, "mistral-7b")
	opt := DataOptions{Tokens: 4 * 4096, SeqLen: 4096, Seed: 3, SyntheticFrac: 1, MaxExample: 900,
		Tasks: []string{"facts:kind=count", "facts:kind=collect"}, Texts: []string{"carroll-alice"}, Workers: 2}
	f, st, err := BuildTrainData(tok, opt)
	if err != nil {
		t.Fatal(err)
	}
	counts, collects := st.Examples["facts:kind=count"], st.Examples["facts:kind=collect"]
	if counts == 0 || collects == 0 || len(st.Examples) != 2 {
		t.Fatalf("examples %v, want both kinds and nothing else", st.Examples)
	}
	var text strings.Builder
	for i := range f.Count {
		text.WriteString(tok.Decode(f.Seq(i), true))
	}
	countQ := regexp.MustCompile(`How many times did|How many \w+s did|Count how often`)
	collectQ := regexp.MustCompile(`What are all the|List every|Name all of the|Give all of them|Give each|What are they\?|Collect all`)
	if n := len(countQ.FindAllString(text.String(), -1)); n < counts {
		t.Errorf("%d count questions for %d count examples", n, counts)
	}
	if n := len(collectQ.FindAllString(text.String(), -1)); n < collects {
		t.Errorf("%d collect questions for %d collect examples", n, collects)
	}
}
