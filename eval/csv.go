package eval

import (
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/namm-dev/namm/internal/atomicfile"
)

// CSV files written next to results.json: the summary table and every
// sample, one row each, for spreadsheets and data frames.
const (
	SummaryCSVFile = "summary.csv"
	SamplesCSVFile = "samples.csv"
)

// WriteCSV writes the summary and the samples of res as CSV files into dir
// and returns their paths.
func WriteCSV(dir string, res *Results) ([]string, error) {
	var paths []string
	for _, f := range []struct {
		name  string
		write func(*csv.Writer) error
	}{
		{SummaryCSVFile, func(w *csv.Writer) error { return writeSummaryCSV(w, res.Summary) }},
		{SamplesCSVFile, func(w *csv.Writer) error { return writeSamplesCSV(w, res.Samples) }},
	} {
		path := filepath.Join(dir, f.name)
		err := atomicfile.Write(path, func(out io.Writer) error {
			w := csv.NewWriter(out)
			if err := f.write(w); err != nil {
				return err
			}
			w.Flush()
			return w.Error()
		})
		if err != nil {
			return paths, fmt.Errorf("eval: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func float(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// optional is float(*x), or empty when x is nil.
func optional(x *float64) string {
	if x == nil {
		return ""
	}
	return float(*x)
}

func writeSummaryCSV(w *csv.Writer, rows []Row) error {
	if err := w.Write([]string{"task", "policy", "budget", "samples", "score", "normalized", "reference_samples",
		"mean_kv_tokens_per_layer", "peak_kv_tokens_per_layer", "tokens_per_second",
		"score_low", "score_high", "normalized_low", "normalized_high", "diff_low", "diff_high"}); err != nil {
		return err
	}
	for _, r := range rows {
		if err := w.Write([]string{r.Task, r.Policy, r.Budget, strconv.Itoa(r.Samples), float(r.Score), optional(r.Normalized),
			strconv.Itoa(r.RefSamples), float(r.MeanKV), float(r.PeakKV), float(r.TokensPerSecond),
			optional(r.ScoreLow), optional(r.ScoreHigh), optional(r.NormalizedLow), optional(r.NormalizedHigh),
			optional(r.DiffLow), optional(r.DiffHigh)}); err != nil {
			return err
		}
	}
	return nil
}

func writeSamplesCSV(w *csv.Writer, samples []SampleResult) error {
	if err := w.Write([]string{"task", "id", "policy", "budget", "score", "metric", "prediction", "prompt_tokens",
		"original_tokens", "truncated", "generated_tokens", "mean_kv_tokens", "peak_kv_tokens", "peak_kv_bytes", "seconds"}); err != nil {
		return err
	}
	for _, s := range samples {
		if err := w.Write([]string{s.Task, s.ID, s.Policy, s.Budget, float(s.Score), s.Metric, s.Prediction,
			strconv.Itoa(s.PromptTokens), strconv.Itoa(s.OriginalTokens), strconv.FormatBool(s.Truncated),
			strconv.Itoa(s.GeneratedTokens), float(s.MeanKVTokens), strconv.Itoa(s.PeakKVTokens),
			strconv.FormatInt(s.PeakKVBytes, 10), float(s.Seconds)}); err != nil {
			return err
		}
	}
	return nil
}
