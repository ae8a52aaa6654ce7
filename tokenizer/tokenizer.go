// Package tokenizer loads Hugging Face tokenizer.json files and encodes text
// to the same ids as the Rust tokenizers library, for BPE models: GPT-2,
// Llama-3 and Qwen2 style byte-level BPE, and SentencePiece-style BPE with
// byte fallback (Llama-2, Mistral).
//
// The pipeline is tokenizers' own: split off added tokens, normalize each
// remaining piece, pre-tokenize into words, BPE each word, then (when asked)
// apply the post-processor. Components it does not implement are reported at
// load time with the file and JSON field path.
package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenizer encodes text to token ids and decodes ids to text. It is safe for
// concurrent use.
type Tokenizer struct {
	model         *bpe
	normalizer    normalizer    // nil: none
	preTokenizer  preTokenizer  // nil: the whole piece is one word
	postProcessor postProcessor // nil: none
	decoder       decoder       // nil: tokens joined by spaces

	added          []*addedToken
	addedByID      map[int]*addedToken
	addedByContent map[string]*addedToken
	rawMatcher     *addedMatcher // added tokens with normalized=false, on raw text
	normMatcher    *addedMatcher // normalized=true, on normalized text

	bos, eos   int // -1 when unknown
	vocabSize  int
	punctCache []bool // id -> IsPunctuation
	source     []byte // the tokenizer.json this was parsed from
}

// Load reads a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse builds a Tokenizer from the contents of a tokenizer.json; name is
// used in error messages.
func Parse(data []byte, name string) (*Tokenizer, error) {
	l := &loader{file: name}
	var top object
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", name, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%s: not a JSON object", name)
	}
	t := &Tokenizer{bos: -1, eos: -1, source: append([]byte(nil), data...)}
	var err error
	if t.model, err = l.model(top["model"]); err != nil {
		return nil, err
	}
	if raw := top["normalizer"]; !isNull(raw) {
		if t.normalizer, err = l.normalizer(raw, "normalizer"); err != nil {
			return nil, err
		}
	}
	if raw := top["pre_tokenizer"]; !isNull(raw) {
		if t.preTokenizer, err = l.preTokenizer(raw, "pre_tokenizer"); err != nil {
			return nil, err
		}
	}
	if raw := top["decoder"]; !isNull(raw) {
		if t.decoder, err = l.decoder(raw, "decoder"); err != nil {
			return nil, err
		}
	}
	if t.added, err = l.addedTokens(top["added_tokens"]); err != nil {
		return nil, err
	}
	t.indexAddedTokens()
	if raw := top["post_processor"]; !isNull(raw) {
		if t.postProcessor, err = l.postProcessor(raw, "post_processor", t.TokenID); err != nil {
			return nil, err
		}
	}
	t.guessBOSEOS()
	t.punctCache = make([]bool, t.vocabSize)
	for id := range t.punctCache {
		t.punctCache[id] = t.computeIsPunctuation(id)
	}
	return t, nil
}

func (t *Tokenizer) indexAddedTokens() {
	t.addedByID = map[int]*addedToken{}
	t.addedByContent = map[string]*addedToken{}
	var raw, normalized []addedPattern
	for _, a := range t.added {
		t.addedByID[a.id] = a
		t.addedByContent[a.content] = a
		if a.normalized {
			text := a.content
			if t.normalizer != nil {
				text = t.normalizer.normalize(text)
			}
			normalized = append(normalized, addedPattern{text, a})
		} else {
			raw = append(raw, addedPattern{a.content, a})
		}
	}
	t.rawMatcher = newAddedMatcher(raw)
	t.normMatcher = newAddedMatcher(normalized)
	t.vocabSize = len(t.model.tokens)
	for _, a := range t.added {
		t.vocabSize = max(t.vocabSize, a.id+1)
	}
}

// guessBOSEOS takes BOS/EOS from the post-processor template (the special
// tokens before and after the sequence), else from well-known names.
// LoadDir overrides them with tokenizer_config.json.
func (t *Tokenizer) guessBOSEOS() {
	if tp, ok := firstTemplate(t.postProcessor); ok {
		if len(tp.before) > 0 {
			t.bos = tp.before[0]
		}
		if len(tp.after) > 0 {
			t.eos = tp.after[len(tp.after)-1]
		}
	}
	for _, name := range []string{"<s>", "<|begin_of_text|>", "<|endoftext|>"} {
		if id, ok := t.TokenID(name); ok && t.bos < 0 {
			t.bos = id
		}
	}
	for _, name := range []string{"</s>", "<|end_of_text|>", "<|endoftext|>"} {
		if id, ok := t.TokenID(name); ok && t.eos < 0 {
			t.eos = id
		}
	}
}

func firstTemplate(p postProcessor) (templateProcessor, bool) {
	switch p := p.(type) {
	case templateProcessor:
		return p, true
	case postProcessorSeq:
		for _, x := range p {
			if tp, ok := firstTemplate(x); ok {
				return tp, true
			}
		}
	}
	return templateProcessor{}, false
}

// LoadDir reads dir/tokenizer.json and, when present, dir/tokenizer_config.json:
// bos_token and eos_token set BOS and EOS, and add_bos_token / add_eos_token,
// where given, replace the post-processor with "[BOS] text [EOS]" as
// transformers does for Llama-style tokenizers.
func LoadDir(dir string) (*Tokenizer, error) {
	t, err := Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(cfgPath)
	if os.IsNotExist(err) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if err := t.applyConfig(data, cfgPath); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokenizer) applyConfig(data []byte, name string) error {
	l := &loader{file: name}
	var cfg object
	if err := json.Unmarshal(data, &cfg); err != nil || cfg == nil {
		return fmt.Errorf("%s: not a JSON object", name)
	}
	special := func(key string) (int, bool, error) {
		raw, ok := cfg[key]
		if !ok || isNull(raw) {
			return -1, false, nil
		}
		var content string
		if json.Unmarshal(raw, &content) != nil {
			o, err := l.object(raw, key)
			if err != nil {
				return 0, false, l.errf(key, "must be a string or an object with \"content\"")
			}
			if content, err = l.requiredStr(o, "content", key); err != nil {
				return 0, false, err
			}
		}
		id, ok := t.TokenID(content)
		if !ok {
			return 0, false, l.errf(key, "%q is not in the vocabulary", content)
		}
		return id, true, nil
	}
	bos, hasBOS, err := special("bos_token")
	if err != nil {
		return err
	}
	eos, hasEOS, err := special("eos_token")
	if err != nil {
		return err
	}
	if hasBOS {
		t.bos = bos
	}
	if hasEOS {
		t.eos = eos
	}
	_, setBOS := cfg["add_bos_token"]
	_, setEOS := cfg["add_eos_token"]
	if !setBOS && !setEOS {
		return nil
	}
	addBOS, err := l.boolean(cfg, "add_bos_token", "", false)
	if err != nil {
		return err
	}
	addEOS, err := l.boolean(cfg, "add_eos_token", "", false)
	if err != nil {
		return err
	}
	var tp templateProcessor
	if addBOS {
		if !hasBOS {
			return l.errf("add_bos_token", "is true but bos_token is not set")
		}
		tp.before = []int{bos}
	}
	if addEOS {
		if !hasEOS {
			return l.errf("add_eos_token", "is true but eos_token is not set")
		}
		tp.after = []int{eos}
	}
	t.postProcessor = tp
	return nil
}

// Encode returns the ids of text. With addSpecial the post-processor runs
// (for Llama-style tokenizers: BOS is prepended), as tokenizers'
// encode(text, add_special_tokens=True). Invalid UTF-8 is first replaced by
// U+FFFD.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	if !utf8.ValidString(text) {
		text = lossyUTF8([]byte(text))
	}
	var ids []int
	for _, seg := range t.rawMatcher.split(text, 0, nil) {
		if seg.token != nil {
			ids = append(ids, seg.token.id)
			continue
		}
		normalized := seg.text
		if t.normalizer != nil {
			normalized = t.normalizer.normalize(normalized)
		}
		for _, sub := range t.normMatcher.split(normalized, seg.start, nil) {
			if sub.token != nil {
				ids = append(ids, sub.token.id)
				continue
			}
			if sub.text == "" {
				continue
			}
			ids = t.encodePiece(piece{text: sub.text, atStart: seg.start == 0 && sub.start == seg.start}, ids)
		}
	}
	if addSpecial && t.postProcessor != nil {
		ids = t.postProcessor.process(ids)
	}
	if ids == nil {
		ids = []int{}
	}
	return ids
}

func (t *Tokenizer) encodePiece(p piece, ids []int) []int {
	words := []piece{p}
	if t.preTokenizer != nil {
		words = t.preTokenizer.preTokenize(words)
	}
	for _, w := range words {
		ids = t.model.tokenize(w.text, ids)
	}
	return ids
}

// Decode turns ids back into text through the decoder; with skipSpecial,
// special added tokens are left out. Unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.addedByID[id]; ok {
			if !(skipSpecial && a.special) {
				tokens = append(tokens, a.content)
			}
			continue
		}
		if id >= 0 && id < len(t.model.tokens) && t.model.tokens[id] != "" {
			tokens = append(tokens, t.model.tokens[id])
		}
	}
	if t.decoder == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(t.decoder.decodeChain(tokens), "")
}

// VocabSize is one more than the largest id of the model or added tokens
// (the number of rows an embedding matrix needs).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// TokenID returns the id of a token string (added tokens first).
func (t *Tokenizer) TokenID(tok string) (int, bool) {
	if a, ok := t.addedByContent[tok]; ok {
		return a.id, true
	}
	id, ok := t.model.vocab[tok]
	return id, ok
}

// Token returns the token string of id, or "" for an unknown id.
func (t *Tokenizer) Token(id int) string {
	if a, ok := t.addedByID[id]; ok {
		return a.content
	}
	if id >= 0 && id < len(t.model.tokens) {
		return t.model.tokens[id]
	}
	return ""
}

// BOS returns the beginning-of-sequence id, if known.
func (t *Tokenizer) BOS() (int, bool) { return t.bos, t.bos >= 0 }

// EOS returns the end-of-sequence id, if known.
func (t *Tokenizer) EOS() (int, bool) { return t.eos, t.eos >= 0 }

// SpecialIDs returns the ids of the added tokens marked special (a fresh map).
func (t *Tokenizer) SpecialIDs() map[int]bool {
	out := map[int]bool{}
	for _, a := range t.added {
		if a.special {
			out[a.id] = true
		}
	}
	return out
}

// IsPunctuation reports whether the token of id decodes to a non-empty text of
// only punctuation (Unicode P, or ASCII symbols as in Python's
// string.punctuation) and whitespace. Special tokens and partial UTF-8 byte
// tokens are not punctuation.
func (t *Tokenizer) IsPunctuation(id int) bool {
	return id >= 0 && id < len(t.punctCache) && t.punctCache[id]
}

const asciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

func (t *Tokenizer) computeIsPunctuation(id int) bool {
	if a, ok := t.addedByID[id]; ok && a.special {
		return false
	}
	text, ok := t.tokenText(id)
	if !ok || text == "" || !utf8.ValidString(text) {
		return false
	}
	for _, r := range text {
		if !unicode.IsPunct(r) && !unicode.IsSpace(r) && !strings.ContainsRune(asciiPunctuation, r) {
			return false
		}
	}
	return true
}

// tokenText is the text one token stands for, without the decoder's
// sentence-level rules (such as stripping the first space).
func (t *Tokenizer) tokenText(id int) (string, bool) {
	tok := t.Token(id)
	if tok == "" {
		return "", false
	}
	if _, ok := t.addedByID[id]; ok {
		return tok, true
	}
	if usesByteLevel(t.decoder) {
		return string(byteLevelBytes(tok, nil)), true
	}
	if b, ok := parseByteToken(tok); ok && t.model.byteFallback {
		return string([]byte{b}), true
	}
	return strings.ReplaceAll(tok, "▁", " "), true
}

func usesByteLevel(d decoder) bool {
	switch d := d.(type) {
	case byteLevelDecoder:
		return true
	case decoderSeq:
		for _, x := range d {
			if usesByteLevel(x) {
				return true
			}
		}
	}
	return false
}
