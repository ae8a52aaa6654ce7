package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/eval"
	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/task/gen"
	"github.com/namm-dev/namm/task/metric"
	"github.com/namm-dev/namm/tokenizer"
)

func init() { extraCommands = append(extraCommands, exportTasksCmd) }

// longBenchExports are the generators with a LongBench v1 counterpart: the
// dataset whose template, metric and generation budget their samples take,
// and what the sample's input is.
var longBenchExports = []struct{ task, dataset, input string }{
	{"passage_retrieval", "passage_retrieval_en", "the abstract"},
	{"passage_count", "passage_count", "empty, as in LongBench"},
	{"qa", "hotpotqa", "the question (context: the documents)"},
	{"facts", "multifieldqa_en", "the question (context: the text with the facts)"},
	{"records", "multifieldqa_en", "the question (context: the text with the facts)"},
}

// longBenchDataset returns the LongBench dataset of a generator, if it has one.
func longBenchDataset(task string) (string, bool) {
	for _, e := range longBenchExports {
		if e.task == task {
			return e.dataset, true
		}
	}
	return "", false
}

// exportableTasks lists the generators export-tasks writes, sorted.
func exportableTasks() []string {
	var names []string
	for _, e := range longBenchExports {
		names = append(names, e.task)
	}
	sort.Strings(names)
	return names
}

func exportTasksCmd() *cobra.Command {
	var (
		tasks, modelDir, tokDir, out, format string
		samples                              int
		seed                                 int64
	)
	var mapping strings.Builder
	for _, e := range longBenchExports {
		m, _ := metric.DatasetMetric(e.dataset)
		fmt.Fprintf(&mapping, "  %-17s -> %-20s  metric %-9s  input: %s\n", e.task, e.dataset, m, e.input)
	}
	cmd := &cobra.Command{
		Use:   "export-tasks --tasks SPEC[,SPEC] --out FILE [--samples N] [--seed S] [--model DIR | --tokenizer DIR]",
		Short: "Write generated task samples as a LongBench v1 JSONL file, or the prompts namm eval runs",
		Long: `export-tasks generates samples of namm's task generators and writes them as a
LongBench v1 JSONL file (fields input, context, answers, length, dataset,
language, all_classes, _id). namm eval --tasks longbench:FILE then scores the
same texts with LongBench's own prompt templates, metrics and generation
budgets: a second view of a memory policy's results.

` + mapping.String() + `
The other generators (niah_*, vartrack, cwe, fwe) have no LongBench counterpart
and are refused. A task is a generator spec TASK[:len=L][:n=N][:seed=S][:key=value...]
or a built-in suite (` + strings.Join(gen.SuiteNames(), ", ") + `), as in namm eval;
a suite is exported only if all of its tasks can be. --samples and --seed act
as in namm eval, so the samples are those namm eval generates from the same
flags and tokenizer.

len is the length of the generator's own prompt in the model's tokens (the
model of --model, the tokenizer of --tokenizer, else the embedded model). The
exported prompt is LongBench's template around the same context and input, so
it is somewhat longer or shorter than len. The template is LongBench's
verbatim: passage_retrieval_en's says "30 paragraphs from Wikipedia" whatever
the paragraphs' number and source.

The length field is the context's word count (runs of non-space characters),
as LongBench counts English, not tokens. Answers are the generator's; a facts
sample with several answers all required (kind=list) has one answer, the
names joined by ", ", since LongBench's metrics take the best of alternatives.
_id is the sample's spec and index (TASK:len=L:n=N:seed=S#i): the same flags
give the same file, byte for byte. --out is written whole or not at all.

--format prompts writes instead, for every generator (niah_* and the others
too), the prompts namm eval feeds the model: one JSON object a sample with id,
task, prompt (ending with its answer_prefix), answer_prefix, answers, metric
and length (the prompt's tokens, BOS included), e.g. to run one through
namm generate --prompt-file, or namm serve's inspector.`,
		Example: `  namm export-tasks --tasks records:len=8192,qa:len=8192 --samples 50 --out ours.jsonl
  namm export-tasks --model DIR --tasks passage_retrieval:len=4096:n=20,passage_count:len=4096:n=20 --out - | head -c 400
  namm eval --model DIR --tasks longbench:ours.jsonl --memory full,h2o,namm --budget 1024
  namm export-tasks --model DIR --tasks niah_single:len=4096 --samples 30 --format prompts --out prompts.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tasks == "" {
				return fmt.Errorf("give --tasks: generators or suites of %s", strings.Join(exportableTasks(), ", "))
			}
			if out == "" {
				return fmt.Errorf("give --out FILE (- for standard output)")
			}
			if samples < 0 {
				return fmt.Errorf("--samples must be >= 0, got %d", samples)
			}
			if modelDir != "" && tokDir != "" {
				return fmt.Errorf("give --model or --tokenizer, not both")
			}
			if format != "longbench" && format != "prompts" {
				return fmt.Errorf("--format %q: longbench or prompts", format)
			}
			specs, err := exportSpecs(strings.Split(tasks, ","), eval.LoadOptions{
				Samples: samples, Seed: seed, HasSeed: cmd.Flags().Changed("seed"),
			}, format == "longbench")
			if err != nil {
				return err
			}
			tok, err := exportTokenizer(modelDir, tokDir)
			if err != nil {
				return err
			}
			generated, err := exportSamples(specs, tok, samples)
			if err != nil {
				return err
			}
			var records []any
			var kinds []string // each record's dataset or task, for the summary
			for _, smp := range generated {
				if format == "prompts" {
					records = append(records, promptRecord{ID: smp.ID, Task: smp.Task, Prompt: smp.Prompt,
						AnswerPrefix: smp.AnswerPrefix, Answers: smp.Answers, Metric: smp.Metric, Length: smp.Length})
					kinds = append(kinds, smp.Task)
					continue
				}
				r, err := toLongBench(smp)
				if err != nil {
					return err
				}
				records = append(records, r)
				kinds = append(kinds, r.Dataset)
			}
			var buf bytes.Buffer
			if err := writeJSONLines(&buf, records); err != nil {
				return err
			}
			if out == "-" {
				_, err = cmd.OutOrStdout().Write(buf.Bytes())
			} else {
				err = atomicfile.WriteFile(out, buf.Bytes())
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d samples (%s) to %s\n", len(records), countsInOrder(kinds), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tasks, "tasks", "", "comma-separated generator specs or suites, of "+strings.Join(exportableTasks(), ", "))
	f.IntVar(&samples, "samples", 0, "samples per task (first K; also n of specs without n=); 0: all")
	f.Int64Var(&seed, "seed", 1, "seed of specs without seed=")
	f.StringVar(&modelDir, "model", "", "model directory (or Hugging Face id in the local cache) whose tokenizer measures len; default: the embedded model")
	f.StringVar(&tokDir, "tokenizer", "", "directory holding tokenizer.json (or the file itself) to measure len with, instead of a model's")
	f.StringVar(&out, "out", "", "JSONL file to write (replaced atomically), or - for standard output")
	f.StringVar(&format, "format", "longbench", "longbench (LongBench v1 records) or prompts (namm eval's prompts, of every generator)")
	return cmd
}

// exportSpecs reads the task specs into generator specs, refusing files and,
// when longBench is set, generators without a LongBench counterpart, before
// anything is generated.
func exportSpecs(list []string, opts eval.LoadOptions, longBench bool) ([]gen.Spec, error) {
	var specs []gen.Spec
	for _, raw := range list {
		text := strings.TrimSpace(raw)
		if text == "" {
			continue
		}
		ss, err := eval.GeneratorSpecs(text, opts)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			if _, ok := longBenchDataset(s.Task); longBench && !ok {
				in := ""
				if s.Task != strings.Split(text, ":")[0] {
					in = " (in " + text + ")"
				}
				return nil, fmt.Errorf("task %s%s has no LongBench counterpart; export-tasks writes %s",
					s.Task, in, strings.Join(exportableTasks(), ", "))
			}
			specs = append(specs, s)
		}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("no tasks given in --tasks")
	}
	return specs, nil
}

// exportTokenizer loads the tokenizer that measures len: --tokenizer's
// (a directory or a tokenizer.json), else the model's.
func exportTokenizer(modelDir, tokPath string) (*tokenizer.Tokenizer, error) {
	if tokPath == "" {
		dir, err := resolveModel(modelDir)
		if err != nil {
			return nil, err
		}
		return tokenizer.LoadDir(dir)
	}
	st, err := os.Stat(tokPath)
	if err != nil {
		return nil, fmt.Errorf("--tokenizer: %w", err)
	}
	if st.IsDir() {
		return tokenizer.LoadDir(tokPath)
	}
	return tokenizer.Load(tokPath)
}

// longBenchRecord is one line of a LongBench v1 file, its fields in
// LongBench's order.
type longBenchRecord struct {
	Input      string   `json:"input"`
	Context    string   `json:"context"`
	Answers    []string `json:"answers"`
	Length     int      `json:"length"` // words of Context, as LongBench counts English
	Dataset    string   `json:"dataset"`
	Language   string   `json:"language"`
	AllClasses []string `json:"all_classes"` // null: no classification dataset is exported
	ID         string   `json:"_id"`
}

// promptRecord is one line of --format prompts: a sample as namm eval feeds it.
type promptRecord struct {
	ID           string   `json:"id"`
	Task         string   `json:"task"`
	Prompt       string   `json:"prompt"`
	AnswerPrefix string   `json:"answer_prefix"`
	Answers      []string `json:"answers"`
	Metric       string   `json:"metric"`
	Length       int      `json:"length"` // tokens of Prompt, BOS included
}

// exportSamples generates every spec's samples (the first limit of them when
// limit > 0, as namm eval takes them).
func exportSamples(specs []gen.Spec, tok gen.Counter, limit int) ([]gen.Sample, error) {
	var out []gen.Sample
	seen := map[string]bool{}
	for _, spec := range specs {
		samples, err := gen.Generate(spec, tok)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", spec, err)
		}
		if limit > 0 && len(samples) > limit {
			samples = samples[:limit]
		}
		for _, s := range samples {
			if seen[s.ID] {
				return nil, fmt.Errorf("task %s given twice", spec)
			}
			seen[s.ID] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// toLongBench maps one generated sample to its LongBench record.
func toLongBench(s gen.Sample) (longBenchRecord, error) {
	dataset, ok := longBenchDataset(s.Task)
	if !ok || s.Context == "" {
		return longBenchRecord{}, fmt.Errorf("sample %s: task %s has no LongBench counterpart", s.ID, s.Task)
	}
	answers := s.Answers
	if s.Metric == "contains" && len(answers) > 1 {
		// "contains" wants every answer; LongBench scores the best of alternatives.
		answers = []string{strings.Join(answers, ", ")}
	}
	return longBenchRecord{
		Input: s.Input, Context: s.Context, Answers: answers, Length: len(strings.Fields(s.Context)),
		Dataset: dataset, Language: "en", ID: s.ID,
	}, nil
}

// writeJSONLines writes records as JSON Lines, HTML characters unescaped.
func writeJSONLines(w io.Writer, records []any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range records {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// countsInOrder says how often each name occurs, in order of first appearance.
func countsInOrder(names []string) string {
	var order []string
	n := map[string]int{}
	for _, d := range names {
		if n[d] == 0 {
			order = append(order, d)
		}
		n[d]++
	}
	parts := make([]string, len(order))
	for i, d := range order {
		parts[i] = fmt.Sprintf("%s %d", d, n[d])
	}
	return strings.Join(parts, ", ")
}
