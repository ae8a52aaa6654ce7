package main

import (
	"encoding/json"
	"fmt"
	"github.com/namm-dev/namm/internal/atomicfile"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/internal/progress"
	"github.com/namm-dev/namm/task/gen/haystack"
	"github.com/namm-dev/namm/tokenizer"
	"github.com/namm-dev/namm/train"
	"github.com/namm-dev/namm/train/corpus"
)

func init() { extraCommands = append(extraCommands, trainDataCmd, trainBaseCmd) }

func trainDataCmd() *cobra.Command {
	var (
		tokDir, out, valOut, textDirs, texts, tasks, corpusPath, cfgPath string
		opt                                                              train.DataOptions
		quiet                                                            bool
	)
	cmd := &cobra.Command{
		Use:   "train-data",
		Short: "Write a training token file for the base language models",
		Long: `train-data writes a token file of fixed-length sequences for training a base
language model (scripts/gpu/train_base.py on a GPU, namm train-base on CPU): windows of the
public-domain haystack texts (train split only), and synthetic long-context task examples
(prompt, answers, EOS; generator seeds >= 1,000,000, disjoint from evaluation seeds) packed
into sequences. It also writes a validation file from the texts' held-out eval split, and
a JSON description next to each file. The same seed gives the same bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tokDir == "" || out == "" {
				return fmt.Errorf("--tokenizer and --out are required")
			}
			tok, err := tokenizer.LoadDir(tokDir)
			if err != nil {
				return err
			}
			if cfgPath != "" {
				if err := checkTokenizerFits(cfgPath, tokDir, tok, opt.SeqLen); err != nil {
					return err
				}
			}
			if texts != "" {
				opt.Texts = strings.Split(texts, ",")
			}
			if tasks != "" {
				opt.Tasks = strings.Split(tasks, ",")
			}
			if textDirs != "" {
				for _, d := range strings.Split(textDirs, ",") {
					docs, err := train.ReadTextDir(d)
					if err != nil {
						return err
					}
					opt.Extra = append(opt.Extra, docs...)
				}
			}
			var valExtra []train.Document
			if corpusPath != "" {
				docs, err := corpus.ReadDocs(corpusPath, "")
				if err != nil {
					return err
				}
				var all strings.Builder
				for _, d := range docs {
					if d.Split == corpus.Eval {
						valExtra = append(valExtra, train.Document{Name: d.ID, Text: d.Text})
						continue
					}
					opt.Extra = append(opt.Extra, train.Document{Name: d.ID, Text: d.Text})
					all.WriteString(d.Text)
					all.WriteString("\n\n")
				}
				// The corpus's train documents are also the haystack of the task examples.
				if err := haystack.Register("corpus", all.String()); err != nil {
					return err
				}
				if opt.TaskTexts == "" {
					opt.TaskTexts = "corpus"
				}
			}
			if valOut == "" {
				ext := filepath.Ext(out)
				valOut = strings.TrimSuffix(out, ext) + ".val" + ext
			}
			start := time.Now()
			count := (opt.Tokens + opt.SeqLen - 1) / max(opt.SeqLen, 1)
			var bar *progress.Bar
			if !quiet {
				bar = progress.New(cmd.ErrOrStderr(), count, "sequences")
			}
			opt.Progress = func(done, total int) { bar.Set(done) }
			f, stats, err := train.BuildTrainData(tok, opt)
			if err != nil {
				bar.Break()
				return err
			}
			bar.Finish()
			if err := f.Write(out); err != nil {
				return err
			}
			val, err := train.BuildValData(tok, opt.SeqLen, opt.Texts, valExtra...)
			if err != nil {
				return err
			}
			if err := val.Write(valOut); err != nil {
				return err
			}
			info := map[string]any{
				"format":         "namm token file v1 (see train/tokenfile.go)",
				"tokenizer":      tokDir,
				"vocab_size":     f.VocabSize,
				"seq_len":        f.SeqLen,
				"sequences":      f.Count,
				"tokens":         f.Count * f.SeqLen,
				"seed":           opt.Seed,
				"synthetic_frac": opt.SyntheticFrac,
				"long_share":     opt.LongShare,
				"max_example":    opt.MaxExample,
				"corpus":         corpusPath,
				"tasks":          tasks,
				"task_texts":     opt.TaskTexts,
				"gen_seed_base":  train.GenSeedBase,
				"bos":            f.BOS,
				"eos":            f.EOS,
				"stats":          stats,
				"validation":     map[string]any{"file": filepath.Base(valOut), "sequences": val.Count, "tokens": val.Count * val.SeqLen, "split": "eval"},
				"seconds":        time.Since(start).Seconds(),
			}
			data, _ := json.MarshalIndent(info, "", " ")
			if err := atomicfile.WriteFile(out+".json", append(data, '\n')); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d sequences x %d tokens (%d synthetic, %d examples, %d failed), %d source tokens\n%s: %d validation sequences\n%.1f s\n",
				out, f.Count, f.SeqLen, stats.SyntheticSequences, sumCounts(stats.Examples), stats.FailedExamples, stats.SourceTokensTotal,
				valOut, val.Count, time.Since(start).Seconds())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tokDir, "tokenizer", "", "tokenizer directory (tokenizer.json [+ tokenizer_config.json])")
	fl.StringVar(&out, "out", "", "training token file to write")
	fl.StringVar(&valOut, "val-out", "", "validation token file (default: OUT with .val before its extension)")
	fl.IntVar(&opt.Tokens, "tokens", 50_000_000, "training tokens (rounded up to whole sequences)")
	fl.IntVar(&opt.SeqLen, "seq-len", 4096, "tokens per sequence")
	fl.Int64Var(&opt.Seed, "seed", 0, "random seed in [0, 1e9)")
	fl.Float64Var(&opt.SyntheticFrac, "synthetic-frac", 0.5, "share of sequences packed with synthetic task examples")
	fl.StringVar(&texts, "texts", "", "comma-separated haystack texts to use (default: all)")
	fl.StringVar(&tasks, "tasks", "", "comma-separated tasks to draw examples from, each drawn equally often; an entry may carry options (facts:kind=collect:distractors=24) and repeat to be drawn more (default: all)")
	fl.StringVar(&textDirs, "text-dir", "", "comma-separated directories of extra *.txt training documents")
	fl.StringVar(&cfgPath, "config", "", "the model's config (configs/model-*.json or a config.json): refuse a tokenizer or --seq-len that does not fit it")
	fl.StringVar(&corpusPath, "corpus", "", "a namm corpus file (JSON lines): its train documents are trained on and hide the task examples, its eval documents join the validation file")
	fl.StringVar(&opt.TaskTexts, "task-texts", "", "haystack texts of the task examples, joined by + (default: --texts, or the corpus with --corpus)")
	fl.IntVar(&opt.MinExample, "min-example", 640, "shortest example prompt in tokens")
	fl.IntVar(&opt.MaxExample, "max-example", 0, "longest example prompt in tokens, but for the --long-share that fill their sequence (0: the sequence)")
	fl.Float64Var(&opt.LongShare, "long-share", 0.5, "share of examples whose prompt fills the rest of their sequence; the others are log-uniform in [--min-example, --max-example]")
	fl.IntVar(&opt.Workers, "workers", 0, "goroutines (default: all cores)")
	fl.BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}

// checkTokenizerFits refuses a tokenizer whose ids or special tokens the model cannot take,
// or sequences longer than its positions, before any data is made.
func checkTokenizerFits(cfgPath, tokDir string, tok *tokenizer.Tokenizer, seqLen int) error {
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var wrapped struct {
		Model *json.RawMessage `json:"model"`
	}
	if err := json.Unmarshal(data, &wrapped); err != nil {
		return fmt.Errorf("--config %s: %w", cfgPath, err)
	}
	if wrapped.Model != nil { // configs/model-*.json keep the Hugging Face config under "model"
		data = *wrapped.Model
	}
	var c struct {
		VocabSize int  `json:"vocab_size"`
		MaxPos    int  `json:"max_position_embeddings"`
		BOS       *int `json:"bos_token_id"`
		EOS       *int `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("--config %s: %w", cfgPath, err)
	}
	switch {
	case c.VocabSize <= 0:
		return fmt.Errorf("--config %s: no vocab_size", cfgPath)
	case tok.VocabSize() > c.VocabSize:
		return fmt.Errorf("tokenizer %s has %d ids but %s's vocab_size is %d: the tokenizer does not fit the model", tokDir, tok.VocabSize(), cfgPath, c.VocabSize)
	case c.MaxPos > 0 && seqLen > c.MaxPos:
		return fmt.Errorf("--seq-len %d exceeds %s's max_position_embeddings %d", seqLen, cfgPath, c.MaxPos)
	}
	if id, ok := tok.BOS(); ok && c.BOS != nil && *c.BOS != id {
		return fmt.Errorf("tokenizer %s's BOS is %d but %s says bos_token_id %d", tokDir, id, cfgPath, *c.BOS)
	}
	if id, ok := tok.EOS(); ok && c.EOS != nil && *c.EOS != id {
		return fmt.Errorf("tokenizer %s's EOS is %d but %s says eos_token_id %d", tokDir, id, cfgPath, *c.EOS)
	}
	return nil
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func trainBaseCmd() *cobra.Command {
	var cfgPath, out, data, backend string
	var steps int
	var resume, quiet bool
	cmd := &cobra.Command{
		Use:   "train-base",
		Short: "Train a small base language model with GoMLX on the CPU (the GPU run uses scripts/gpu/train_base.py)",
		Long: `Trains the configuration's Llama-style model on a namm train-data token file with
AdamW, linear warm-up and cosine decay, in float32 on the pure-Go backend. Checkpoints,
the step log and loss.png go to OUT/train/; --resume continues exactly from the last
checkpoint. At the end OUT is a Hugging Face model directory the engine loads.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgPath == "" || out == "" {
				return fmt.Errorf("--config and --out are required")
			}
			c, err := train.LoadRunConfig(cfgPath)
			if err != nil {
				return err
			}
			if data == "" {
				data = c.Train.Data
			}
			if data == "" {
				return fmt.Errorf("train-base: give --data (a namm train-data token file) or train.data in %s", cfgPath)
			}
			tf, err := train.ReadTokenFile(data)
			if err != nil {
				return err
			}
			opt := train.BaseOptions{Config: c, Data: tf, OutDir: out, Backend: backend, Steps: steps, Resume: resume}
			if !quiet {
				opt.Progress = cmd.ErrOrStderr()
			}
			res, err := train.TrainBase(opt)
			if err != nil {
				return err
			}
			if n := len(res.Log); n > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d parameters, %d steps (resumed at %d), loss %.4f -> %.4f, %s\n", out, res.Parameters,
					res.Steps, res.ResumedAt, res.Log[0].Loss, res.Log[n-1].Loss, res.Elapsed.Round(time.Second))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "training configuration (JSON, e.g. configs/tiny-cpu.json)")
	cmd.Flags().StringVar(&out, "out", "", "output model directory")
	cmd.Flags().StringVar(&data, "data", "", "training token file from namm train-data (default: the config's train.data)")
	cmd.Flags().StringVar(&backend, "backend", "go", "GoMLX backend: go or go:CONFIG")
	cmd.Flags().IntVar(&steps, "steps", 0, "schedule length in steps (default: train.max_steps)")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue from OUT/train/checkpoint.safetensors")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}
