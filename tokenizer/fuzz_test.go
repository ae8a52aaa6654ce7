package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func FuzzLoad(f *testing.F) {
	small, err := os.ReadFile(filepath.Join(fixtureDir, "llama3-tiny", "tokenizer.json"))
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}`,
		`{"added_tokens": [{"id": 3, "content": "<s>", "special": true, "lstrip": true, "rstrip": true, "single_word": true}],
		  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
		  "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},
		  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}], "special_tokens": {"<s>": {"ids": [3]}}},
		  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
		  "model": {"type": "BPE", "vocab": {"▁": 0, "a": 1, "▁a": 2, "<0x41>": 4}, "merges": [["▁", "a"]], "byte_fallback": true, "fuse_unk": true}}`,
		`{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+(?!\\S)|\\s+"}, "behavior": "MergedWithNext", "invert": true}, "model": {"vocab": {}, "merges": []}}`,
		`{"model": {"type": "Unigram"}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 99999999}, "merges": []}}`,
		`{"model": null}`, `[]`, `null`, ``,
		string(small[:len(small)/2]),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := Parse(data, "fuzz.json")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.json") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// A file that loads must encode and decode without panicking.
		for _, text := range []string{"", "a b", " <s>ab\n", "ünï 12 👍"} {
			ids := tk.Encode(text, true)
			_ = tk.Decode(ids, true)
			for _, id := range ids {
				_ = tk.IsPunctuation(id)
				_ = tk.Token(id)
			}
		}
	})
}

// FuzzEncodeDecode checks the round trip Decode(Encode(s)) == s for valid
// UTF-8. Byte-level tokenizers give back any text exactly. For the
// SentencePiece-style fixture, the space its normalizer prepends is the one
// the Strip decoder removes, so s comes back too, with "▁" read as a space;
// texts holding added tokens ("<s>") are left out, as those decode with the
// spaces the normalizer put around them.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"Hello world", "  spaces  ", "tab\tnew\nline", "café 中文 👨‍👩‍👧", "12345678", "\x00\x7f", "a\u00a0b", "<s>", "▁x"} {
		f.Add(s)
	}
	byteLevel := []*Tokenizer{fixture(f, "gpt2"), fixture(f, "llama3-tiny")}
	qwen := fixture(f, "qwen2-tiny") // normalizes to NFC first
	sp := fixture(f, "mistral-7b")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		for _, tk := range byteLevel {
			if got := tk.Decode(tk.Encode(s, false), false); got != s {
				t.Errorf("byte-level round trip of %q gave %q", s, got)
			}
		}
		if got, want := qwen.Decode(qwen.Encode(s, false), false), norm.NFC.String(s); got != want {
			t.Errorf("qwen2 round trip of %q gave %q, want its NFC form %q", s, got, want)
		}
		if strings.Contains(s, "<s>") || strings.Contains(s, "</s>") || strings.Contains(s, "<unk>") {
			return
		}
		// "▁" in the text is a space once decoded; the rest comes back exactly
		want := strings.ReplaceAll(s, "▁", " ")
		if got := sp.Decode(sp.Encode(s, true), true); got != want {
			t.Errorf("SentencePiece round trip of %q gave %q, want %q", s, got, want)
		}
	})
}
