package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/internal/provenance"
)

// Files written into Config.OutDir.
const (
	JournalFile = "journal.jsonl" // one finished sample per line, appended and synced
	ResultsFile = "results.json"  // every result and the summary, rewritten at the end
	MetaFile    = "run.json"      // what the results depend on, checked on resume
)

// Progress receives the course of a Run; a nil Progress is silent.
type Progress interface {
	// Start is called once with the samples to run and those already done.
	Start(total, resumed int)
	// Done is called after each sample that ran.
	Done(r SampleResult)
}

// Config is a whole evaluation.
type Config struct {
	Scorer   *Scorer
	Tasks    []Task
	Variants []Variant
	// OutDir receives the journal, results.json and the plots; "" writes
	// nothing (and nothing resumes).
	OutDir string
	// Run records the model (by content), the compute settings and the
	// build in run.json and results.json. A resumed run must have the same
	// model content, backend kind, dtype and chunk (Meta).
	Run      provenance.Run
	Progress Progress
	NoPlots  bool
	// SVG also draws the plots as SVG files next to the PNGs.
	SVG bool
	// Notes go into results.json (e.g. Matrix.Notes).
	Notes []string
}

// Meta is what the stored results depend on, checked on resume: another
// model or truncation length would mix incomparable numbers. The model is
// its content hash, so the same files resume from any path.
type Meta struct {
	Model     string `json:"model"`           // modelid.ID.Hash
	Setup     string `json:"setup,omitempty"` // backend kind, dtype, chunk
	MaxLength int    `json:"max_length"`
}

// metaOf is the resume identity of a run.
func metaOf(run provenance.Run, maxLength int) Meta {
	m := Meta{Model: run.Model.Hash, MaxLength: maxLength}
	if run.Backend != "" || run.DType != "" || run.Chunk != 0 {
		kind, _, _ := strings.Cut(run.Backend, ":") // the plugin's path may differ between machines
		m.Setup = fmt.Sprintf("backend=%s dtype=%s chunk=%d", kind, run.DType, run.Chunk)
	}
	return m
}

// runFile is the content of run.json.
type runFile struct {
	Meta
	Run provenance.Run `json:"run"`
	// Policies are every policy journalled into the directory so far; a
	// learned one must keep its fingerprint to resume.
	Policies []PolicyInfo `json:"policies,omitempty"`
}

// PolicyInfo describes one column of the results: the spec as given, its
// budget, and the policy's own name with every option in effect.
type PolicyInfo struct {
	Label  string `json:"label"`
	Spec   string `json:"spec"`
	Budget string `json:"budget,omitempty"`
	Name   string `json:"name"`
	// Fingerprint identifies a learned policy's parameters by content (a
	// NAMM's: its file may be replaced at the same path); "" for the others.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// fingerprinter is implemented by policies with learned parameters.
type fingerprinter interface{ Fingerprint() string }

// Results is the content of results.json.
type Results struct {
	Meta
	Run      provenance.Run `json:"run"`
	Policies []PolicyInfo   `json:"policies"`
	Created  string         `json:"created"`
	Notes    []string       `json:"notes,omitempty"`
	Summary  []Row          `json:"summary"`
	Samples  []SampleResult `json:"samples"`
}

// policyInfo lists the variants with their resolved names.
func policyInfo(variants []Variant) ([]PolicyInfo, error) {
	var out []PolicyInfo
	for _, v := range variants {
		p, err := v.New()
		if err != nil {
			return nil, fmt.Errorf("eval: memory %s: %w", v.Label(), err)
		}
		info := PolicyInfo{Label: v.Label(), Spec: v.Policy, Budget: BudgetLabel(v.Budget), Name: p.Name()}
		if f, ok := p.(fingerprinter); ok {
			info.Fingerprint = f.Fingerprint()
		}
		out = append(out, info)
	}
	return out, nil
}

// Report is what Run returns.
type Report struct {
	Results
	Ran, Resumed int      // samples run now, and taken from the journal
	Files        []string // files written
}

// Run evaluates every variant on every task's samples. With an OutDir,
// samples already in its journal are skipped, each new result is appended to
// the journal (synced) as soon as it is scored, and results.json and the
// plots are written atomically at the end. An interrupted run keeps what it
// finished; running it again completes it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Scorer == nil || cfg.Scorer.Engine == nil || cfg.Scorer.Tokenizer == nil {
		return nil, errors.New("eval: Config.Scorer needs an engine and a tokenizer")
	}
	if len(cfg.Tasks) == 0 || len(cfg.Variants) == 0 {
		return nil, errors.New("eval: nothing to run (no tasks or no memory policies)")
	}
	if err := CheckMaxLength(cfg.Scorer.MaxLength, cfg.Scorer.Engine.Config.MaxPositionEmbeddings); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if cfg.Run.Namm == (provenance.Build{}) {
		cfg.Run.Namm = provenance.ReadBuild()
	}
	meta := metaOf(cfg.Run, cfg.Scorer.maxLength())
	policies, err := policyInfo(cfg.Variants)
	if err != nil {
		return nil, err
	}
	rep := &Report{Results: Results{Meta: meta, Run: cfg.Run, Policies: policies, Notes: cfg.Notes}}
	done := map[string]SampleResult{}
	var journal *Journal
	if cfg.OutDir != "" {
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
		if err := atomicfile.RemoveTemps(cfg.OutDir); err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
		if err := checkMeta(filepath.Join(cfg.OutDir, MetaFile), runFile{Meta: meta, Run: cfg.Run, Policies: policies}); err != nil {
			return nil, err
		}
		j, prev, err := OpenJournal(filepath.Join(cfg.OutDir, JournalFile))
		if err != nil {
			return nil, err
		}
		journal = j
		defer journal.Close()
		for _, r := range prev {
			done[r.Key()] = r
		}
	}

	// Work out what is left, in a fixed order: variant, task, sample.
	type job struct {
		v       Variant
		samples []Sample
	}
	var jobs []job
	total := 0
	for _, v := range cfg.Variants {
		var todo []Sample
		for _, t := range cfg.Tasks {
			for _, s := range t.Samples {
				key := SampleResult{Task: s.Task, ID: s.ID, Policy: v.Policy, Budget: BudgetLabel(v.Budget)}.Key()
				if _, ok := done[key]; ok {
					rep.Resumed++
				} else {
					todo = append(todo, s)
				}
			}
		}
		if len(todo) > 0 {
			jobs = append(jobs, job{v, todo})
			total += len(todo)
		}
	}
	if cfg.Progress != nil {
		cfg.Progress.Start(total, rep.Resumed)
	}
	for _, jb := range jobs {
		var appendErr error
		_, err := cfg.Scorer.ScoreAll(ctx, jb.samples, jb.v.New, func(_ int, r SampleResult) {
			r.Policy, r.Budget = jb.v.Policy, BudgetLabel(jb.v.Budget)
			done[r.Key()] = r
			rep.Ran++
			if journal != nil && appendErr == nil {
				appendErr = journal.Append(r)
			}
			if cfg.Progress != nil {
				cfg.Progress.Done(r)
			}
		})
		if err == nil {
			err = appendErr
		}
		if err != nil {
			return rep, fmt.Errorf("eval: memory %s: %w", jb.v.Label(), err)
		}
	}

	// Collect in the same order, summarise, write.
	var names []string
	for _, t := range cfg.Tasks {
		names = append(names, t.Name)
	}
	for _, v := range cfg.Variants {
		for _, t := range cfg.Tasks {
			for _, s := range t.Samples {
				key := SampleResult{Task: s.Task, ID: s.ID, Policy: v.Policy, Budget: BudgetLabel(v.Budget)}.Key()
				rep.Samples = append(rep.Samples, done[key])
			}
		}
	}
	rep.Summary = Summarize(rep.Samples, names, cfg.Variants)
	rep.Created = time.Now().UTC().Format(time.RFC3339)
	if cfg.OutDir == "" {
		return rep, nil
	}
	path := filepath.Join(cfg.OutDir, ResultsFile)
	if err := writeJSONAtomic(path, rep.Results); err != nil {
		return rep, err
	}
	rep.Files = append(rep.Files, path)
	csvPaths, err := WriteCSV(cfg.OutDir, &rep.Results)
	rep.Files = append(rep.Files, csvPaths...)
	if err != nil {
		return rep, err
	}
	if !cfg.NoPlots {
		paths, err := WritePlots(cfg.OutDir, rep.Summary, cfg.SVG)
		rep.Files = append(rep.Files, paths...)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// checkMeta writes run to path, or, when path exists, checks that it holds
// the same Meta.
func checkMeta(path string, run runFile) error {
	meta := run.Meta
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return writeJSONAtomic(path, run)
	}
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	var stored runFile
	if err := json.Unmarshal(data, &stored); err != nil {
		return fmt.Errorf("eval: %s: %w (delete it to start over)", path, err)
	}
	if old := stored.Meta; old != meta {
		return fmt.Errorf("eval: %s holds results of another run (model %s %s, %s, max length %d; now model %s %s, %s, max length %d): use another --out",
			filepath.Dir(path), stored.Run.Model.Name, old.Model, old.Setup, old.MaxLength, run.Run.Model.Name, meta.Model, meta.Setup, meta.MaxLength)
	}
	known := map[string]PolicyInfo{}
	for _, p := range stored.Policies {
		known[p.Label] = p
	}
	added := false
	for _, p := range run.Policies {
		old, ok := known[p.Label]
		switch {
		case !ok:
			stored.Policies = append(stored.Policies, p)
			added = true
		case old.Fingerprint != p.Fingerprint:
			return fmt.Errorf("eval: %s holds results of memory %s with parameters %s; its file now holds %s: use another --out",
				filepath.Dir(path), p.Label, old.Fingerprint, p.Fingerprint)
		}
	}
	if added {
		return writeJSONAtomic(path, stored)
	}
	return nil
}
