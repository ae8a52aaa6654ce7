// Package haystack holds the public-domain texts that the task generators hide needles in, and
// that the project's small language models are trained on (see PROVENANCE.md).
//
// Each text has two splits: "train" (the first ~90%) and "eval" (the rest, cut at a paragraph
// boundary), so that a model trained on the train split is evaluated on haystacks it has not
// seen. Task generation uses the eval split by default.
package haystack

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
)

//go:embed texts/*.txt.gz
var files embed.FS

// EvalFraction is the share of each text, taken from its end, that is held out for evaluation.
const EvalFraction = 0.10

// Split names accepted by Split.
const (
	Train = "train"
	Eval  = "eval"
)

var (
	loadOnce sync.Once
	texts    map[string]string
	names    []string
	loadErr  error
)

func load() {
	loadOnce.Do(func() {
		entries, err := files.ReadDir("texts")
		if err != nil {
			loadErr = fmt.Errorf("haystack: reading embedded texts: %w", err)
			return
		}
		texts = make(map[string]string, len(entries))
		for _, e := range entries {
			name := strings.TrimSuffix(e.Name(), ".txt.gz")
			raw, err := files.ReadFile(path.Join("texts", e.Name()))
			if err != nil {
				loadErr = fmt.Errorf("haystack: reading %s: %w", e.Name(), err)
				return
			}
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				loadErr = fmt.Errorf("haystack: decompressing %s: %w", e.Name(), err)
				return
			}
			data, err := io.ReadAll(zr)
			if err != nil {
				loadErr = fmt.Errorf("haystack: decompressing %s: %w", e.Name(), err)
				return
			}
			texts[name] = string(data)
			names = append(names, name)
		}
		sort.Strings(names)
	})
}

// Names lists the available texts in sorted order.
func Names() []string {
	load()
	return append([]string(nil), names...)
}

// Texts returns every text, whole (both splits), by name. The map is a fresh copy.
func Texts() map[string]string {
	load()
	out := make(map[string]string, len(texts))
	for k, v := range texts {
		out[k] = v
	}
	return out
}

var (
	registeredMu sync.RWMutex
	registered   = map[string]string{}
)

// Register adds a text for the rest of the process under a name that no embedded text has,
// e.g. a training corpus that namm train-data hides its task examples in. Registered texts
// are not listed by Names, so the default haystacks (and evaluation) never include them.
func Register(name, text string) error {
	load()
	if _, ok := texts[name]; ok {
		return fmt.Errorf("haystack: %q is an embedded text", name)
	}
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("haystack: registered text %q is empty", name)
	}
	registeredMu.Lock()
	defer registeredMu.Unlock()
	registered[name] = text
	return nil
}

// Get returns one whole text by name.
func Get(name string) (string, error) {
	load()
	if loadErr != nil {
		return "", loadErr
	}
	registeredMu.RLock()
	t, ok := registered[name]
	registeredMu.RUnlock()
	if ok {
		return t, nil
	}
	t, ok = texts[name]
	if !ok {
		return "", fmt.Errorf("haystack: unknown text %q (have %s)", name, strings.Join(names, ", "))
	}
	return t, nil
}

// Split returns the "train" or "eval" part of a text. The two parts concatenated give the
// whole text; the eval part starts at the first paragraph break (blank line) after
// (1-EvalFraction) of the text's bytes, or at a line break when there is none nearby.
func Split(name, split string) (string, error) {
	t, err := Get(name)
	if err != nil {
		return "", err
	}
	cut := splitPoint(t)
	switch split {
	case Train:
		return t[:cut], nil
	case Eval:
		return t[cut:], nil
	default:
		return "", fmt.Errorf("haystack: unknown split %q (want %q or %q)", split, Train, Eval)
	}
}

// splitPoint is the byte offset where the eval part of t begins.
func splitPoint(t string) int {
	start := int(float64(len(t)) * (1 - EvalFraction))
	for _, sep := range []string{"\n\n", "\n"} {
		if i := strings.Index(t[start:], sep); i >= 0 && i < len(t)/20 {
			return start + i + len(sep)
		}
	}
	return start
}
