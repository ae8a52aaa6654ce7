package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/internal/progress"
	"github.com/namm-dev/namm/train/corpus"
)

func init() { extraCommands = append(extraCommands, corpusCmd) }

func corpusCmd() *cobra.Command {
	var manifest, root, out string
	var quiet bool
	var opt corpus.Options
	cmd := &cobra.Command{
		Use:   "corpus",
		Short: "Build the base models' training text from the packages a manifest lists",
		Long: `corpus reads the sources of a manifest (configs/corpus.json: Debian documentation and
dictionaries, npm datasets, each with its licence and provenance), unpacked under --root
by scripts/corpus/fetch.sh, and writes one JSON line per document (id, source, split, text)
to --out. Text is extracted by format (plain text, HTML, Perl POD, dictd dictionaries,
JSON records, e-mail), paragraphs seen before in any earlier document are dropped, and
documents are split into train and eval by a hash of their id. OUT.json records the
manifest with the counts of every source. namm train-data --corpus reads the result.`,
		Example: `  scripts/corpus/fetch.sh configs/corpus.json /tmp/corpus-src
  namm corpus --manifest configs/corpus.json --root /tmp/corpus-src --out /tmp/corpus.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			m, err := corpus.LoadManifest(manifest)
			if err != nil {
				return err
			}
			start := time.Now()
			var buf bytes.Buffer
			if !quiet && progress.IsTerminal(cmd.ErrOrStderr()) {
				opt.Progress = func(source string, done, total int) {
					if done == total || done%200 == 0 {
						fmt.Fprintf(cmd.ErrOrStderr(), "\r%-28s %6d/%d files", source, done, total)
					}
				}
			}
			stats, err := corpus.Build(m, root, &buf, opt)
			if opt.Progress != nil {
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, buf.Bytes()); err != nil {
				return err
			}
			info, _ := json.MarshalIndent(map[string]any{"manifest": manifest, "sources": stats, "seconds": time.Since(start).Seconds()}, "", " ")
			if err := atomicfile.WriteFile(out+".json", append(info, '\n')); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', tabwriter.AlignRight)
			sampling := opt.TrainPercent > 0 && opt.TrainPercent < 100
			head := "source\tfiles\tdocs\teval docs\tMB\tdup paragraphs\tshort docs\t"
			if sampling {
				head += "sampled out\t"
			}
			fmt.Fprintln(tw, head)
			var docs, chars int
			for _, s := range stats {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%d\t%d\t", s.Name, s.Files, s.Docs, s.EvalDocs, float64(s.Chars)/1e6, s.DupParagraphs, s.ShortDocs)
				if sampling {
					fmt.Fprintf(tw, "%d\t", s.SampledOut)
				}
				fmt.Fprintln(tw)
				docs += s.Docs
				chars += s.Chars
			}
			fmt.Fprintf(tw, "all\t\t%d\t\t%.2f\t\t\t\n", docs, float64(chars)/1e6)
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&manifest, "manifest", "configs/corpus.json", "corpus manifest (sources, licences, globs, formats)")
	fl.StringVar(&root, "root", "corpus-src", "directory holding one unpacked directory per source package")
	fl.StringVar(&out, "out", "", "JSON-lines corpus file to write")
	fl.IntVar(&opt.EvalPercent, "eval-percent", 2, "share of documents (by id hash) held out for evaluation, in percent")
	fl.IntVar(&opt.TrainPercent, "train-percent", 100, "share of the train documents kept (by another id hash), in percent: an exact subset of the whole corpus, smaller to carry; eval documents are all kept")
	fl.IntVar(&opt.MinChars, "min-chars", 200, "drop documents shorter than this after deduplication")
	fl.IntVar(&opt.Workers, "workers", 0, "goroutines (default: all cores)")
	fl.BoolVar(&quiet, "quiet", false, "no progress line")
	return cmd
}
