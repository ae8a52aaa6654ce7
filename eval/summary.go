package eval

import (
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// AllTasks is the Task of the summary rows that average over tasks.
const AllTasks = "(mean over tasks)"

// Row is one line of the summary: a task (or AllTasks) with one variant.
type Row struct {
	Task    string `json:"task"`
	Policy  string `json:"policy"`
	Budget  string `json:"budget"`
	Samples int    `json:"samples"`
	// Score is the mean sample score in percent (LongBench's scale); for
	// AllTasks the mean over tasks of the task scores.
	Score float64 `json:"score"`
	// Normalized is the score divided by the full cache's on the same samples
	// (for AllTasks, the mean over tasks of that ratio, as the NAMM paper
	// reports it); nil without a reference or where the reference scored 0.
	Normalized *float64 `json:"normalized"`
	// RefSamples is how many of the samples the reference also ran.
	RefSamples int `json:"reference_samples"`
	// ScoreLow and ScoreHigh bound the 95% percentile bootstrap interval of
	// Score: the row's samples resampled (for AllTasks, within each task).
	// Nil with fewer than 2 samples (for AllTasks, in any task).
	ScoreLow  *float64 `json:"score_low,omitempty"`
	ScoreHigh *float64 `json:"score_high,omitempty"`
	// NormalizedLow and NormalizedHigh bound Normalized by a paired bootstrap
	// over the sample IDs shared with the reference. Nil where Normalized is,
	// with fewer than 2 shared IDs, or when over half the resamples drew a
	// reference sum of 0.
	NormalizedLow  *float64 `json:"normalized_low,omitempty"`
	NormalizedHigh *float64 `json:"normalized_high,omitempty"`
	// DiffLow and DiffHigh bound the paired difference of the score minus the
	// reference's score on the shared sample IDs, in points (for AllTasks,
	// the mean over tasks of that difference). Nil without a reference or
	// with fewer than 2 shared IDs.
	DiffLow  *float64 `json:"diff_low,omitempty"`
	DiffHigh *float64 `json:"diff_high,omitempty"`
	// MeanKV is the mean over samples of the mean over passes of the tokens
	// per layer; PeakKV is the max over samples of the peak tokens per layer
	// (the peak summed over layers, divided by the layer count).
	MeanKV float64 `json:"mean_kv_tokens_per_layer"`
	PeakKV float64 `json:"peak_kv_tokens_per_layer"`
	// TokensPerSecond is (prompt + generated tokens) / seconds, over all samples.
	TokensPerSecond float64 `json:"tokens_per_second"`
	// MeanPerLayer is, per layer, the mean over samples of the tokens held.
	MeanPerLayer []float64 `json:"cache_mean_per_layer"`

	tokens, seconds float64 // sums behind TokensPerSecond
}

// Label is "policy@budget" or the policy alone.
func (r Row) Label() string {
	if r.Budget != "" {
		return r.Policy + "@" + r.Budget
	}
	return r.Policy
}

// Summarize groups results by task and variant (in the order of tasks and
// variants) and adds an AllTasks row per variant when there are several
// tasks. Normalised scores divide by the reference variant's results on the
// same sample IDs. Intervals are bootstrapped as bootstrap.go describes.
func Summarize(results []SampleResult, tasks []string, variants []Variant) []Row {
	type key struct{ task, label string }
	groups := map[key][]SampleResult{}
	for _, r := range results {
		k := key{r.Task, labelOf(r.Policy, r.Budget)}
		groups[k] = append(groups[k], r)
	}
	var ref *Variant
	for i := range variants {
		if variants[i].IsReference() {
			ref = &variants[i]
		}
	}
	var rows []Row
	perVariant := map[string][]Row{}
	strata := map[string][]stratum{}
	for _, task := range tasks {
		for _, v := range variants {
			rs := groups[key{task, v.Label()}]
			if len(rs) == 0 {
				continue
			}
			row := aggregate(rs)
			row.Task, row.Policy, row.Budget = task, v.Policy, BudgetLabel(v.Budget)
			var refResults []SampleResult
			if ref != nil {
				refResults = groups[key{task, ref.Label()}]
			}
			s := newStratum(rs, refResults)
			if ref != nil {
				row.Normalized, row.RefSamples = s.normalized()
			}
			row.setIntervals([]stratum{s})
			rows = append(rows, row)
			perVariant[v.Label()] = append(perVariant[v.Label()], row)
			strata[v.Label()] = append(strata[v.Label()], s)
		}
	}
	if len(tasks) < 2 {
		return rows
	}
	for _, v := range variants {
		tr := perVariant[v.Label()]
		if len(tr) == 0 {
			continue
		}
		all := Row{Task: AllTasks, Policy: v.Policy, Budget: BudgetLabel(v.Budget)}
		var norm []float64
		for _, r := range tr {
			all.Samples += r.Samples
			all.RefSamples += r.RefSamples
			all.Score += r.Score / float64(len(tr))
			all.MeanKV += r.MeanKV / float64(len(tr))
			all.PeakKV = math.Max(all.PeakKV, r.PeakKV)
			if r.Normalized != nil {
				norm = append(norm, *r.Normalized)
			}
			all.tokens += r.tokens
			all.seconds += r.seconds
			all.MeanPerLayer = addScaled(all.MeanPerLayer, r.MeanPerLayer, 1/float64(len(tr)))
		}
		if len(norm) > 0 {
			all.Normalized = ptr(mean(norm))
		}
		all.setIntervals(strata[v.Label()])
		if all.seconds > 0 {
			all.TokensPerSecond = all.tokens / all.seconds
		}
		rows = append(rows, all)
	}
	return rows
}

// setIntervals sets the row's intervals from its strata: one for a task
// row, one per task for AllTasks.
func (r *Row) setIntervals(strata []stratum) {
	r.ScoreLow, r.ScoreHigh = scoreInterval(r.Task, r.Label(), strata)
	r.NormalizedLow, r.NormalizedHigh, r.DiffLow, r.DiffHigh = pairedIntervals(r.Task, r.Label(), strata)
}

func labelOf(policy, budget string) string {
	if budget != "" {
		return policy + "@" + budget
	}
	return policy
}

// aggregate computes the sample-level figures of one group.
func aggregate(rs []SampleResult) Row {
	var row Row
	row.Samples = len(rs)
	for _, r := range rs {
		row.Score += 100 * r.Score / float64(len(rs))
		row.MeanKV += r.MeanKVTokens / float64(len(rs))
		if n := len(r.MeanPerLayer); n > 0 {
			row.PeakKV = math.Max(row.PeakKV, float64(r.PeakKVTokens)/float64(n))
		}
		row.tokens += float64(r.PromptTokens + r.GeneratedTokens)
		row.seconds += r.Seconds
		row.MeanPerLayer = addScaled(row.MeanPerLayer, r.MeanPerLayer, 1/float64(len(rs)))
	}
	if row.seconds > 0 {
		row.TokensPerSecond = row.tokens / row.seconds
	}
	return row
}

// normalize divides the mean score of rs by the reference's mean on the
// sample IDs both have; nil when they share none or the reference scored 0.
func normalize(rs, ref []SampleResult) (*float64, int) {
	return newStratum(rs, ref).normalized()
}

// normalized is the stratum's normalised score (nil without one) and the
// number of shared sample IDs.
func (s stratum) normalized() (*float64, int) {
	if !s.ratio {
		return nil, len(s.variant)
	}
	var sum, refSum float64
	for i := range s.variant {
		sum += s.variant[i]
		refSum += s.reference[i]
	}
	return ptr(sum / refSum), len(s.variant)
}

func addScaled(acc, x []float64, scale float64) []float64 {
	if len(acc) < len(x) {
		acc = append(acc, make([]float64, len(x)-len(acc))...)
	}
	for i, v := range x {
		acc[i] += v * scale
	}
	return acc
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func ptr(x float64) *float64 { return &x }

// WriteTable prints rows as an aligned table (text columns left, numbers
// right), then, when any row has one, a table of the 95% bootstrap
// intervals, then a legend and the notes.
func WriteTable(w io.Writer, rows []Row, notes []string) error {
	cells := [][]string{{"task", "memory", "budget", "n", "score", "normalised", "KV mean/layer", "KV peak/layer", "tok/s"}}
	intervals := [][]string{{"task", "memory", "budget", "score", "normalised", "score - " + ReferencePolicy}}
	for _, r := range rows {
		budget := r.Budget
		if budget == "" {
			budget = "-"
		}
		norm := "-"
		if r.Normalized != nil {
			norm = fmt.Sprintf("%.3f", *r.Normalized)
		}
		cells = append(cells, []string{r.Task, r.Policy, budget, fmt.Sprint(r.Samples), fmt.Sprintf("%.2f", r.Score), norm,
			fmt.Sprintf("%.1f", r.MeanKV), fmt.Sprintf("%.1f", r.PeakKV), fmt.Sprintf("%.1f", r.TokensPerSecond)})
		if r.ScoreLow != nil || r.NormalizedLow != nil || r.DiffLow != nil {
			intervals = append(intervals, []string{r.Task, r.Policy, budget, interval("%.1f", r.ScoreLow, r.ScoreHigh),
				interval("%.3f", r.NormalizedLow, r.NormalizedHigh), interval("%+.1f", r.DiffLow, r.DiffHigh)})
		}
	}
	var b strings.Builder
	writeAligned(&b, cells, 3)
	if len(intervals) > 1 {
		b.WriteString("\n95% bootstrap intervals\n")
		writeAligned(&b, intervals, 3)
	}
	b.WriteString("score: mean metric x100; normalised: score / full-cache score on the same samples ('-': no reference, or it scored 0;\n" +
		"  the mean over tasks leaves such tasks out);\n" +
		"KV: tokens per layer (max over KV heads); tok/s: (prompt + generated tokens) / wall seconds; budget '-': the policy takes none\n")
	if len(intervals) > 1 {
		fmt.Fprintf(&b, "intervals: percentile bootstrap of %d resamples of the samples; normalised and score - %s (points)\n"+
			"  resample the sample IDs shared with %[2]s, paired; the mean over tasks resamples within each task;\n"+
			"  '-': fewer than 2 samples, or no normalised score\n",
			Resamples, ReferencePolicy)
	}
	for _, n := range notes {
		b.WriteString("note: " + n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// interval formats [low, high] with verb, or "-" when undefined.
func interval(verb string, low, high *float64) string {
	if low == nil || high == nil {
		return "-"
	}
	return fmt.Sprintf("["+verb+", "+verb+"]", *low, *high)
}

// writeAligned writes cells as columns two spaces apart, the first left
// columns left-aligned and the others right-aligned.
func writeAligned(b *strings.Builder, cells [][]string, left int) {
	width := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range cells {
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < left {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		b.WriteString("\n")
	}
}

// shortLabel shortens a label for plot legends.
func shortLabel(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return strings.TrimSpace(s)
}

// NormalizedScore is the NAMM paper's normalised score of results against
// the full cache's results on the same samples: per task, the summed scores
// divided by the reference's summed scores over the sample IDs both have,
// then the mean over tasks. Tasks the reference scored 0 on (or that share
// no sample with it) are left out; tasks reports how many counted, and a
// result with no task counted is NaN.
func NormalizedScore(results, reference []SampleResult) (score float64, tasks int) {
	byTask := map[string][]SampleResult{}
	refByTask := map[string][]SampleResult{}
	var order []string
	for _, r := range results {
		if _, ok := byTask[r.Task]; !ok {
			order = append(order, r.Task)
		}
		byTask[r.Task] = append(byTask[r.Task], r)
	}
	for _, r := range reference {
		refByTask[r.Task] = append(refByTask[r.Task], r)
	}
	var ratios []float64
	for _, task := range order {
		if n, _ := normalize(byTask[task], refByTask[task]); n != nil {
			ratios = append(ratios, *n)
		}
	}
	if len(ratios) == 0 {
		return math.NaN(), 0
	}
	return mean(ratios), len(ratios)
}
