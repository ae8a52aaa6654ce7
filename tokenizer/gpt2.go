package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/namm-dev/namm/internal/atomicfile"
	"sort"
	"strings"
)

// FromGPT2Files converts OpenAI's GPT-2 files (encoder.json: token -> id;
// vocab.bpe: a "#version" line then one merge "a b" per line) to a tokenizer
// laid out like Hugging Face's gpt2 tokenizer.json; Save writes it out.
func FromGPT2Files(encoderJSON, vocabBPE string) (*Tokenizer, error) {
	data, err := GPT2TokenizerJSON(encoderJSON, vocabBPE)
	if err != nil {
		return nil, err
	}
	return Parse(data, "tokenizer.json converted from "+encoderJSON)
}

// GPT2TokenizerJSON returns the tokenizer.json text for OpenAI's GPT-2 files.
func GPT2TokenizerJSON(encoderJSON, vocabBPE string) ([]byte, error) {
	encData, err := readFile(encoderJSON)
	if err != nil {
		return nil, err
	}
	var vocab map[string]int
	if err := json.Unmarshal(encData, &vocab); err != nil {
		return nil, fmt.Errorf("%s: must be a JSON object mapping tokens to ids: %w", encoderJSON, err)
	}
	const eot = "<|endoftext|>"
	eotID, ok := vocab[eot]
	if !ok {
		return nil, fmt.Errorf("%s: has no %q token", encoderJSON, eot)
	}
	bpeData, err := readFile(vocabBPE)
	if err != nil {
		return nil, err
	}
	var merges []string
	for i, line := range strings.Split(string(bpeData), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || (i == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		if a, b, ok := strings.Cut(line, " "); !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("%s:%d: %q is not a merge \"a b\"", vocabBPE, i+1, line)
		}
		merges = append(merges, line)
	}
	type entry struct {
		tok string
		id  int
	}
	entries := make([]entry, 0, len(vocab))
	for tok, id := range vocab {
		entries = append(entries, entry{tok, id})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].id < entries[j].id })

	var b bytes.Buffer
	quote := func(s string) string {
		var q bytes.Buffer
		enc := json.NewEncoder(&q)
		enc.SetEscapeHTML(false) // HF writes "<" and ">" as is
		_ = enc.Encode(s)
		return strings.TrimSuffix(q.String(), "\n")
	}
	fmt.Fprintf(&b, `{
  "version": "1.0",
  "truncation": null,
  "padding": null,
  "added_tokens": [
    {
      "id": %d,
      "content": %s,
      "single_word": false,
      "lstrip": false,
      "rstrip": false,
      "normalized": true,
      "special": true
    }
  ],
  "normalizer": null,
  "pre_tokenizer": {
    "type": "ByteLevel",
    "add_prefix_space": false,
    "trim_offsets": true,
    "use_regex": true
  },
  "post_processor": {
    "type": "ByteLevel",
    "add_prefix_space": true,
    "trim_offsets": false,
    "use_regex": true
  },
  "decoder": {
    "type": "ByteLevel",
    "add_prefix_space": true,
    "trim_offsets": true,
    "use_regex": true
  },
  "model": {
    "type": "BPE",
    "dropout": null,
    "unk_token": null,
    "continuing_subword_prefix": "",
    "end_of_word_suffix": "",
    "fuse_unk": false,
    "byte_fallback": false,
    "ignore_merges": false,
    "vocab": {`, eotID, quote(eot))
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n      %s: %d", quote(e.tok), e.id)
	}
	b.WriteString("\n    },\n    \"merges\": [")
	for i, m := range merges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n      " + quote(m))
	}
	b.WriteString("\n    ]\n  }\n}")
	return b.Bytes(), nil
}

// Save writes the tokenizer.json this tokenizer was parsed from, atomically.
func (t *Tokenizer) Save(path string) error {
	if err := atomicfile.WriteFile(path, t.source); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	return nil
}
