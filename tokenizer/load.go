package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

// ErrUnsupported is wrapped by errors about components this package does not
// implement (a Unigram model, a BertNormalizer, ...).
var ErrUnsupported = errors.New("not supported")

// maxID bounds token ids so that a corrupt file cannot make us allocate
// gigabytes for the id -> token table.
const maxID = 1 << 24

// loader parses one tokenizer.json; every error names the file and the JSON
// field path.
type loader struct {
	file string
}

type object map[string]json.RawMessage

func (l *loader) errf(path, format string, args ...any) error {
	return fmt.Errorf("%s: %s %s", l.file, path, fmt.Sprintf(format, args...))
}

func (l *loader) unsupported(path, name, supported string) error {
	return fmt.Errorf("%s: %s %q is %w (supported: %s)", l.file, path, name, ErrUnsupported, supported)
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func (l *loader) object(raw json.RawMessage, path string) (object, error) {
	var o object
	if err := json.Unmarshal(raw, &o); err != nil || o == nil {
		return nil, l.errf(path, "must be a JSON object")
	}
	return o, nil
}

func (l *loader) str(o object, key, path string, def string) (string, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", l.errf(path+"."+key, "must be a string")
	}
	return s, nil
}

func (l *loader) requiredStr(o object, key, path string) (string, error) {
	if raw, ok := o[key]; !ok || isNull(raw) {
		return "", l.errf(path+"."+key, "is missing")
	}
	return l.str(o, key, path, "")
}

func (l *loader) boolean(o object, key, path string, def bool) (bool, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, l.errf(path+"."+key, "must be true or false")
	}
	return b, nil
}

func (l *loader) integer(o object, key, path string, def int) (int, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return def, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, l.errf(path+"."+key, "must be an integer")
	}
	return n, nil
}

func (l *loader) list(o object, key, path string) ([]json.RawMessage, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return nil, l.errf(path+"."+key, "is missing")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, l.errf(path+"."+key, "must be a list")
	}
	return items, nil
}

// typed reads a component object and its "type".
func (l *loader) typed(raw json.RawMessage, path string) (object, string, error) {
	o, err := l.object(raw, path)
	if err != nil {
		return nil, "", err
	}
	typ, err := l.requiredStr(o, "type", path)
	return o, typ, err
}

// pattern reads {"String": "..."} or {"Regex": "..."}.
func (l *loader) pattern(o object, key, path string) (matcher, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return nil, l.errf(path+"."+key, "is missing")
	}
	p, err := l.object(raw, path+"."+key)
	if err != nil {
		return nil, err
	}
	if _, ok := p["String"]; ok {
		s, err := l.str(p, "String", path+"."+key, "")
		return literalMatcher(s), err
	}
	if _, ok := p["Regex"]; ok {
		s, err := l.str(p, "Regex", path+"."+key, "")
		if err != nil {
			return nil, err
		}
		m, err := compileRegex(s)
		if err != nil {
			return nil, l.errf(path+"."+key+".Regex", "%v", err)
		}
		return m, nil
	}
	return nil, l.errf(path+"."+key, "must have a String or a Regex field")
}

func (l *loader) normalizer(raw json.RawMessage, path string) (normalizer, error) {
	o, typ, err := l.typed(raw, path)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		items, err := l.list(o, "normalizers", path)
		if err != nil {
			return nil, err
		}
		var seq normalizerSeq
		for i, item := range items {
			n, err := l.normalizer(item, fmt.Sprintf("%s.normalizers[%d]", path, i))
			if err != nil {
				return nil, err
			}
			seq = append(seq, n)
		}
		return seq, nil
	case "Prepend":
		s, err := l.requiredStr(o, "prepend", path)
		return prependNormalizer(s), err
	case "Replace":
		m, err := l.pattern(o, "pattern", path)
		if err != nil {
			return nil, err
		}
		content, err := l.str(o, "content", path, "")
		return replaceNormalizer{m, content}, err
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "Strip":
		left, err := l.boolean(o, "strip_left", path, false)
		if err != nil {
			return nil, err
		}
		right, err := l.boolean(o, "strip_right", path, false)
		return stripNormalizer{left, right}, err
	}
	if n, ok := unicodeNormalizer(typ); ok {
		return n, nil
	}
	return nil, l.unsupported(path+".type", typ, "Sequence, Prepend, Replace, Lowercase, Strip, NFC, NFD, NFKC, NFKD")
}

func (l *loader) preTokenizer(raw json.RawMessage, path string) (preTokenizer, error) {
	o, typ, err := l.typed(raw, path)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		items, err := l.list(o, "pretokenizers", path)
		if err != nil {
			return nil, err
		}
		var seq preTokenizerSeq
		for i, item := range items {
			p, err := l.preTokenizer(item, fmt.Sprintf("%s.pretokenizers[%d]", path, i))
			if err != nil {
				return nil, err
			}
			seq = append(seq, p)
		}
		return seq, nil
	case "Split":
		m, err := l.pattern(o, "pattern", path)
		if err != nil {
			return nil, err
		}
		name, err := l.requiredStr(o, "behavior", path)
		if err != nil {
			return nil, err
		}
		behavior, ok := splitBehaviors[name]
		if !ok {
			return nil, l.errf(path+".behavior", "%q is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous", name)
		}
		invert, err := l.boolean(o, "invert", path, false)
		return splitPreTokenizer{m, behavior, invert}, err
	case "ByteLevel":
		prefix, err := l.boolean(o, "add_prefix_space", path, true)
		if err != nil {
			return nil, err
		}
		useRegex, err := l.boolean(o, "use_regex", path, true)
		if err != nil {
			return nil, err
		}
		bl := byteLevelPreTokenizer{addPrefixSpace: prefix}
		if useRegex {
			bl.split = gpt2Matcher()
		}
		return bl, nil
	case "Metaspace":
		ms := metaspacePreTokenizer{}
		var err error
		if ms.replacement, ms.scheme, err = l.metaspace(o, path); err != nil {
			return nil, err
		}
		ms.split, err = l.boolean(o, "split", path, true)
		return ms, err
	case "Digits":
		individual, err := l.boolean(o, "individual_digits", path, false)
		return digitsPreTokenizer{individual}, err
	}
	return nil, l.unsupported(path+".type", typ, "Sequence, Split, ByteLevel, Metaspace, Digits")
}

// metaspace reads the replacement and prepend scheme shared by the Metaspace
// pre-tokenizer and decoder (older files say add_prefix_space instead).
func (l *loader) metaspace(o object, path string) (string, prependScheme, error) {
	rep, err := l.str(o, "replacement", path, "▁")
	if err != nil {
		return "", 0, err
	}
	if utf8.RuneCountInString(rep) != 1 {
		return "", 0, l.errf(path+".replacement", "must be one character, got %q", rep)
	}
	scheme := prependAlways
	if _, ok := o["prepend_scheme"]; ok {
		name, err := l.str(o, "prepend_scheme", path, "always")
		if err != nil {
			return "", 0, err
		}
		switch name {
		case "always":
		case "first":
			scheme = prependFirst
		case "never":
			scheme = prependNever
		default:
			return "", 0, l.errf(path+".prepend_scheme", "%q is not one of first, always, never", name)
		}
	} else {
		add, err := l.boolean(o, "add_prefix_space", path, true)
		if err != nil {
			return "", 0, err
		}
		if !add {
			scheme = prependNever
		}
	}
	return rep, scheme, nil
}

func (l *loader) decoder(raw json.RawMessage, path string) (decoder, error) {
	o, typ, err := l.typed(raw, path)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		items, err := l.list(o, "decoders", path)
		if err != nil {
			return nil, err
		}
		var seq decoderSeq
		for i, item := range items {
			d, err := l.decoder(item, fmt.Sprintf("%s.decoders[%d]", path, i))
			if err != nil {
				return nil, err
			}
			seq = append(seq, d)
		}
		return seq, nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "Replace":
		m, err := l.pattern(o, "pattern", path)
		if err != nil {
			return nil, err
		}
		content, err := l.str(o, "content", path, "")
		return replaceDecoder{m, content}, err
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		content, err := l.requiredStr(o, "content", path)
		if err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(content) != 1 {
			return nil, l.errf(path+".content", "must be one character, got %q", content)
		}
		r, _ := utf8.DecodeRuneInString(content)
		start, err := l.integer(o, "start", path, 0)
		if err != nil {
			return nil, err
		}
		stop, err := l.integer(o, "stop", path, 0)
		if err != nil {
			return nil, err
		}
		if start < 0 || stop < 0 {
			return nil, l.errf(path, "start and stop must not be negative")
		}
		return stripDecoder{r, start, stop}, nil
	case "Metaspace":
		rep, scheme, err := l.metaspace(o, path)
		return metaspaceDecoder{rep, scheme}, err
	}
	return nil, l.unsupported(path+".type", typ, "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace")
}

// postProcessor resolves templates to ids; tokenID looks a token up in the
// whole vocabulary (added tokens included).
func (l *loader) postProcessor(raw json.RawMessage, path string, tokenID func(string) (int, bool)) (postProcessor, error) {
	o, typ, err := l.typed(raw, path)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		items, err := l.list(o, "processors", path)
		if err != nil {
			return nil, err
		}
		var seq postProcessorSeq
		for i, item := range items {
			p, err := l.postProcessor(item, fmt.Sprintf("%s.processors[%d]", path, i), tokenID)
			if err != nil {
				return nil, err
			}
			seq = append(seq, p)
		}
		return seq, nil
	case "ByteLevel":
		return identityProcessor{}, nil
	case "TemplateProcessing":
		return l.template(o, path)
	case "BertProcessing", "RobertaProcessing":
		var tp templateProcessor
		for _, key := range []string{"cls", "sep"} {
			var pair []json.RawMessage
			var id int
			if err := json.Unmarshal(o[key], &pair); err != nil || len(pair) != 2 || json.Unmarshal(pair[1], &id) != nil {
				return nil, l.errf(path+"."+key, "must be a [token, id] pair")
			}
			if key == "cls" {
				tp.before = []int{id}
			} else {
				tp.after = []int{id}
			}
		}
		return tp, nil
	}
	return nil, l.unsupported(path+".type", typ, "Sequence, ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing")
}

func (l *loader) template(o object, path string) (postProcessor, error) {
	items, err := l.list(o, "single", path)
	if err != nil {
		return nil, err
	}
	specials := map[string][]int{}
	if raw, ok := o["special_tokens"]; ok && !isNull(raw) {
		st, err := l.object(raw, path+".special_tokens")
		if err != nil {
			return nil, err
		}
		for name, raw := range st {
			p := path + ".special_tokens." + name
			var spec struct {
				IDs []int `json:"ids"`
			}
			if err := json.Unmarshal(raw, &spec); err != nil {
				return nil, l.errf(p, "must be an object with a list of ids")
			}
			for _, id := range spec.IDs {
				if id < 0 || id >= maxID {
					return nil, l.errf(p+".ids", "has an id %d out of range", id)
				}
			}
			specials[name] = spec.IDs
		}
	}
	var tp templateProcessor
	seenSeq := false
	for i, raw := range items {
		p := fmt.Sprintf("%s.single[%d]", path, i)
		var item struct {
			SpecialToken *struct {
				ID string `json:"id"`
			}
			Sequence *struct {
				ID string `json:"id"`
			}
		}
		if err := json.Unmarshal(raw, &item); err != nil {
			return nil, l.errf(p, "must be a SpecialToken or Sequence object")
		}
		switch {
		case item.SpecialToken != nil:
			ids, ok := specials[item.SpecialToken.ID]
			if !ok {
				return nil, l.errf(p+".SpecialToken.id", "%q is not in %s.special_tokens", item.SpecialToken.ID, path)
			}
			if seenSeq {
				tp.after = append(tp.after, ids...)
			} else {
				tp.before = append(tp.before, ids...)
			}
		case item.Sequence != nil:
			if seenSeq {
				return nil, l.errf(p, "repeats the sequence")
			}
			seenSeq = true
		default:
			return nil, l.errf(p, "must be a SpecialToken or Sequence object")
		}
	}
	return tp, nil
}

// model reads the BPE model.
func (l *loader) model(raw json.RawMessage) (*bpe, error) {
	const path = "model"
	if isNull(raw) {
		return nil, l.errf(path, "is missing")
	}
	o, err := l.object(raw, path)
	if err != nil {
		return nil, err
	}
	typ, err := l.str(o, "type", path, "")
	if err != nil {
		return nil, err
	}
	if typ == "" { // old files leave the type out; a BPE model has merges
		if _, ok := o["merges"]; !ok {
			return nil, l.errf(path+".type", "is missing and the model has no merges (only BPE is supported)")
		}
		typ = "BPE"
	}
	if typ != "BPE" {
		return nil, l.unsupported(path+".type", typ, "BPE")
	}
	if raw, ok := o["dropout"]; ok && !isNull(raw) {
		var p float64
		if err := json.Unmarshal(raw, &p); err != nil || p != 0 {
			// dropout makes encoding random: the ids could never match a reference
			return nil, fmt.Errorf("%s: %s.dropout %s is %w: only null is supported", l.file, path, strings.TrimSpace(string(raw)), ErrUnsupported)
		}
	}
	m := &bpe{unkID: -1, cache: map[string][]int{}}
	rawVocab, ok := o["vocab"]
	if !ok {
		return nil, l.errf(path+".vocab", "is missing")
	}
	if err := json.Unmarshal(rawVocab, &m.vocab); err != nil || m.vocab == nil {
		return nil, l.errf(path+".vocab", "must be an object mapping tokens to integer ids")
	}
	maxSeen := -1
	for tok, id := range m.vocab {
		if id < 0 || id >= maxID {
			return nil, l.errf(path+".vocab", "token %q has id %d out of range [0, %d)", tok, id, maxID)
		}
		maxSeen = max(maxSeen, id)
	}
	m.tokens = make([]string, maxSeen+1)
	owner := make([]bool, maxSeen+1)
	for tok, id := range m.vocab {
		if owner[id] {
			a, b := m.tokens[id], tok
			if a > b {
				a, b = b, a
			}
			return nil, l.errf(path+".vocab", "tokens %q and %q share id %d", a, b, id)
		}
		owner[id] = true
		m.tokens[id] = tok
	}
	if m.prefix, err = l.str(o, "continuing_subword_prefix", path, ""); err != nil {
		return nil, err
	}
	if m.suffix, err = l.str(o, "end_of_word_suffix", path, ""); err != nil {
		return nil, err
	}
	if m.fuseUnk, err = l.boolean(o, "fuse_unk", path, false); err != nil {
		return nil, err
	}
	if m.byteFallback, err = l.boolean(o, "byte_fallback", path, false); err != nil {
		return nil, err
	}
	if m.ignoreMerges, err = l.boolean(o, "ignore_merges", path, false); err != nil {
		return nil, err
	}
	unk, err := l.str(o, "unk_token", path, "")
	if err != nil {
		return nil, err
	}
	if unk != "" {
		id, ok := m.vocab[unk]
		if !ok {
			return nil, l.errf(path+".unk_token", "%q is not in model.vocab", unk)
		}
		m.unkID = id
	}
	for b := 0; b < 256; b++ {
		m.byteIDs[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = id
		}
	}
	return m, l.merges(o, m)
}

func (l *loader) merges(o object, m *bpe) error {
	const path = "model.merges"
	items, err := l.list(o, "merges", "model")
	if err != nil {
		return err
	}
	m.merges = make(map[uint64]merge, len(items))
	for rank, raw := range items {
		p := fmt.Sprintf("%s[%d]", path, rank)
		var a, b string
		var line string
		var pair []string
		switch {
		case json.Unmarshal(raw, &line) == nil:
			var ok bool
			if a, b, ok = strings.Cut(line, " "); !ok {
				return l.errf(p, "%q is not two tokens separated by a space", line)
			}
		case json.Unmarshal(raw, &pair) == nil && len(pair) == 2:
			a, b = pair[0], pair[1]
		default:
			return l.errf(p, "must be a string \"a b\" or a pair [\"a\", \"b\"]")
		}
		aID, ok := m.vocab[a]
		if !ok {
			return l.errf(p, "refers to %q, which is not in model.vocab", a)
		}
		bID, ok := m.vocab[b]
		if !ok {
			return l.errf(p, "refers to %q, which is not in model.vocab", b)
		}
		merged := a + strings.TrimPrefix(b, m.prefix)
		newID, ok := m.vocab[merged]
		if !ok {
			return l.errf(p, "makes %q, which is not in model.vocab", merged)
		}
		// like tokenizers, a repeated pair keeps its last rank
		m.merges[pairKey(aID, bID)] = merge{rank: int32(rank), newID: int32(newID)}
	}
	return nil
}

func (l *loader) addedTokens(raw json.RawMessage) ([]*addedToken, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, l.errf("added_tokens", "must be a list")
	}
	var out []*addedToken
	for i, raw := range items {
		p := fmt.Sprintf("added_tokens[%d]", i)
		o, err := l.object(raw, p)
		if err != nil {
			return nil, err
		}
		t := &addedToken{}
		if _, ok := o["id"]; !ok {
			return nil, l.errf(p+".id", "is missing")
		}
		if t.id, err = l.integer(o, "id", p, 0); err != nil {
			return nil, err
		}
		if t.id < 0 || t.id >= maxID {
			return nil, l.errf(p+".id", "%d is out of range [0, %d)", t.id, maxID)
		}
		if t.content, err = l.requiredStr(o, "content", p); err != nil {
			return nil, err
		}
		if t.content == "" {
			return nil, l.errf(p+".content", "is empty")
		}
		fields := []struct {
			key string
			dst *bool
			def bool
		}{{"single_word", &t.singleWord, false}, {"lstrip", &t.lstrip, false}, {"rstrip", &t.rstrip, false},
			{"normalized", &t.normalized, true}, {"special", &t.special, false}}
		for _, f := range fields {
			if *f.dst, err = l.boolean(o, f.key, p, f.def); err != nil {
				return nil, err
			}
		}
		out = append(out, t)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// readFile reads a file for Load and LoadDir.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return data, nil
}
