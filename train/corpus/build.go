package corpus

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/namm-dev/namm/internal/par"
)

// Split names of a document.
const (
	Train = "train"
	Eval  = "eval"
)

// Doc is one corpus document, one line of the corpus JSONL file.
type Doc struct {
	ID     string `json:"id"` // source/relative/path, with #k for the k-th document of one file
	Source string `json:"source"`
	Split  string `json:"split"`
	Text   string `json:"text"`
}

// Options tune Build.
type Options struct {
	EvalPercent int // documents held out for evaluation, by a hash of their id (default 2)
	MinChars    int // shorter documents (after deduplication) are dropped (default 200)
	// MinDupChars is the shortest paragraph that deduplication drops when seen before
	// (default 40): shorter ones ("Note", "Example:") recur naturally.
	MinDupChars int
	// TrainPercent keeps this share of the train documents, by a hash of their id other
	// than the split's (default 100: all): a smaller corpus, for a machine that takes only so
	// many bytes, that is an exact subset of the whole one (deduplication runs as for all).
	TrainPercent int
	Workers      int
	Progress     func(source string, done, total int)
}

// SourceStats describe what one source gave.
type SourceStats struct {
	Source
	Files         int `json:"files"`
	Docs          int `json:"docs"`
	EvalDocs      int `json:"eval_docs"`
	Chars         int `json:"chars"`
	EvalChars     int `json:"eval_chars"`
	DupParagraphs int `json:"duplicate_paragraphs_dropped"`
	ShortDocs     int `json:"short_docs_dropped"`
	SampledOut    int `json:"train_docs_sampled_out,omitempty"`
}

// Build reads every source of m from root/<source dir>, and writes the documents as JSON
// lines to w. Sources are read in manifest order and files in sorted path order, so the
// output is the same on every run.
func Build(m *Manifest, root string, w io.Writer, opt Options) ([]SourceStats, error) {
	if opt.EvalPercent <= 0 {
		opt.EvalPercent = 2
	}
	if opt.MinChars <= 0 {
		opt.MinChars = 200
	}
	if opt.MinDupChars <= 0 {
		opt.MinDupChars = 40
	}
	if opt.TrainPercent <= 0 || opt.TrainPercent > 100 {
		opt.TrainPercent = 100
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	seen := map[uint64]bool{}
	var stats []SourceStats
	for _, s := range m.Sources {
		st := SourceStats{Source: s}
		files, err := sourceFiles(root, s)
		if err != nil {
			return nil, err
		}
		st.Files = len(files)
		texts := make([][]string, len(files))
		errs := make([]error, len(files))
		done := 0
		par.For(len(files), opt.Workers, func(i int) {
			data, err := os.ReadFile(filepath.Join(root, s.Dir(), files[i]))
			if err == nil {
				texts[i], err = extract(s.Format, data, s.DictEntries)
			}
			if err != nil {
				errs[i] = fmt.Errorf("corpus source %s: %s: %w", s.Name, filepath.Join(root, s.Dir(), files[i]), err)
			}
		})
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for i, f := range files {
			for k, t := range texts[i] {
				id := s.Name + "/" + f
				if len(texts[i]) > 1 {
					id += fmt.Sprintf("#%d", k)
				}
				text, dups := dedupParagraphs(clean(t), seen, opt.MinDupChars)
				st.DupParagraphs += dups
				if len([]rune(text)) < opt.MinChars {
					st.ShortDocs++
					continue
				}
				d := Doc{ID: id, Source: s.Name, Split: splitOf(id, opt.EvalPercent), Text: text}
				if d.Split == Train && !sampled(id, opt.TrainPercent) {
					st.SampledOut++
					continue
				}
				if err := enc.Encode(d); err != nil {
					return nil, err
				}
				st.Docs++
				st.Chars += len(text)
				if d.Split == Eval {
					st.EvalDocs++
					st.EvalChars += len(text)
				}
			}
			done++
			if opt.Progress != nil {
				opt.Progress(s.Name, done, len(files))
			}
		}
		if st.Docs+st.SampledOut == 0 { // a small --train-percent may leave a small source out
			return nil, fmt.Errorf("corpus source %s: no documents from %d files under %s", s.Name, len(files), filepath.Join(root, s.Dir()))
		}
		stats = append(stats, st)
	}
	return stats, bw.Flush()
}

// sourceFiles lists the files of s that its globs select, sorted.
func sourceFiles(root string, s Source) ([]string, error) {
	dir := filepath.Join(root, s.Dir())
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("corpus source %s: %s is not a directory: unpack %s there (scripts/corpus/fetch.sh)", s.Name, dir, s.Package)
	}
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if matchAny(s.Include, rel) && !matchAny(s.Exclude, rel) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("corpus source %s: %w", s.Name, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("corpus source %s: no file under %s matches %v", s.Name, dir, s.Include)
	}
	sort.Strings(files)
	return files, nil
}

func matchAny(globs []string, p string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, p); ok {
			return true
		}
	}
	return false
}

var (
	blankRuns     = regexp.MustCompile(`\n[ \t]*(\n[ \t]*)+`)
	trailingSpace = regexp.MustCompile(`[ \t]+\n`)
)

// clean normalises line ends, drops trailing spaces and control characters, and leaves at
// most one blank line between paragraphs.
func clean(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r < 0x20 || r == 0x7f || r == 0xfffd || r == '\u00a0':
			if r == '\u00a0' {
				return ' '
			}
			return -1
		}
		return r
	}, s)
	s = trailingSpace.ReplaceAllString(s, "\n")
	s = blankRuns.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s)
}

// dedupParagraphs drops the paragraphs (blank-line separated) of at least minChars characters
// whose whitespace-normalised text is in seen, and adds the others to seen. It returns the
// text left and the number of paragraphs dropped.
func dedupParagraphs(s string, seen map[uint64]bool, minChars int) (string, int) {
	paras := strings.Split(s, "\n\n")
	kept := paras[:0]
	dups := 0
	for _, p := range paras {
		norm := strings.Join(strings.Fields(p), " ")
		if norm == "" {
			continue
		}
		if len(norm) >= minChars {
			h := fnv.New64a()
			h.Write([]byte(norm))
			k := h.Sum64()
			if seen[k] {
				dups++
				continue
			}
			seen[k] = true
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "\n\n"), dups
}

// splitOf assigns a document to the eval split when a hash of its id falls in the first
// evalPercent of 100 buckets.
func splitOf(id string, evalPercent int) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	if int(h.Sum32()%100) < evalPercent {
		return Eval
	}
	return Train
}

// sampled reports whether a train document is among the percent kept (CRC-32 of its id,
// independent of splitOf's FNV hash).
func sampled(id string, percent int) bool {
	return percent >= 100 || int(crc32.ChecksumIEEE([]byte(id))%100) < percent
}

// ReadDocs reads a corpus JSONL file, keeping the documents of the given split ("" for all).
func ReadDocs(path, split string) ([]Doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	defer f.Close()
	var docs []Doc
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for line := 1; sc.Scan(); line++ {
		var d Doc
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("corpus %s:%d: %w", path, line, err)
		}
		if d.ID == "" || d.Text == "" || (d.Split != Train && d.Split != Eval) {
			return nil, fmt.Errorf("corpus %s:%d: a document needs id, text and split train|eval", path, line)
		}
		if split == "" || d.Split == split {
			docs = append(docs, d)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("corpus %s: no %s documents", path, split)
	}
	return docs, nil
}
