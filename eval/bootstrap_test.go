package eval

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/namm-dev/namm/policy"
)

var (
	fullVariant = Variant{Policy: "full"}
	h2oVariant  = Variant{Policy: "h2o", Budget: policy.Budget{Tokens: 64}}
)

// scored returns one result per score, IDs "0", "1", ... in order.
func scored(task string, v Variant, scores ...float64) []SampleResult {
	var out []SampleResult
	for i, s := range scores {
		out = append(out, SampleResult{Task: task, ID: fmt.Sprint(i), Policy: v.Policy, Budget: BudgetLabel(v.Budget), Score: s})
	}
	return out
}

// bernoulli returns n scores, the first ones of them 1 and the rest 0.
func bernoulli(ones, n int) []float64 {
	out := make([]float64, n)
	for i := range ones {
		out[i] = 1
	}
	return out
}

func findRow(t *testing.T, rows []Row, task, label string) Row {
	t.Helper()
	for _, r := range rows {
		if r.Task == task && r.Label() == label {
			return r
		}
	}
	t.Fatalf("no row %s %s in %+v", task, label, rows)
	return Row{}
}

// TestScoreIntervalBernoulli: 22 of 40 samples right. The percentile
// interval must hold the point estimate 55, come out the same on every call,
// and be as wide as the normal approximation 2 x 1.96 sqrt(p(1-p)/n) x100 =
// 30.8 points within 20%.
func TestScoreIntervalBernoulli(t *testing.T) {
	results := scored("T", h2oVariant, bernoulli(22, 40)...)
	rows := Summarize(results, []string{"T"}, []Variant{h2oVariant})
	r := findRow(t, rows, "T", "h2o@64")
	if r.ScoreLow == nil || r.ScoreHigh == nil {
		t.Fatalf("no score interval: %+v", r)
	}
	low, high := *r.ScoreLow, *r.ScoreHigh
	if math.Abs(r.Score-55) > 1e-9 || low > 55 || high < 55 {
		t.Errorf("score %v, interval [%v, %v]: want 55 inside", r.Score, low, high)
	}
	normal := 2 * 1.96 * math.Sqrt(0.55*0.45/40) * 100
	if w := high - low; math.Abs(w-normal) > 0.2*normal {
		t.Errorf("interval width %.2f, normal approximation %.2f: more than 20%% apart", w, normal)
	}
	again := findRow(t, Summarize(results, []string{"T"}, []Variant{h2oVariant}), "T", "h2o@64")
	if *again.ScoreLow != low || *again.ScoreHigh != high {
		t.Errorf("second call [%v, %v], first [%v, %v]", *again.ScoreLow, *again.ScoreHigh, low, high)
	}
	if r.NormalizedLow != nil || r.DiffLow != nil {
		t.Errorf("no reference, yet paired intervals: %+v", r)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, rows, nil); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("[%.1f, %.1f]", low, high)
	for _, s := range []string{"95% bootstrap intervals", want, "score - full", "percentile bootstrap of 2000 resamples"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, buf.String())
		}
	}
}

// TestScoreIntervalAllEqual: samples that all score the same leave nothing
// to resample: a zero-width interval at the score.
func TestScoreIntervalAllEqual(t *testing.T) {
	scores := make([]float64, 25)
	for i := range scores {
		scores[i] = 0.3
	}
	r := findRow(t, Summarize(scored("T", h2oVariant, scores...), []string{"T"}, []Variant{h2oVariant}), "T", "h2o@64")
	if r.ScoreLow == nil || *r.ScoreHigh != *r.ScoreLow || math.Abs(*r.ScoreLow-r.Score) > 1e-9 {
		t.Errorf("score %v, interval [%v, %v]: want zero width at the score", r.Score, r.ScoreLow, r.ScoreHigh)
	}
}

// TestPairedIdentical: a variant that scores what the reference scores, ID
// by ID, is normalised to exactly [1, 1] and differs by exactly [0, 0].
func TestPairedIdentical(t *testing.T) {
	scores := []float64{1, 0, 0.5, 0.25, 1, 1, 0, 0.75, 0.2, 0.9}
	results := append(scored("T", fullVariant, scores...), scored("T", h2oVariant, scores...)...)
	rows := Summarize(results, []string{"T"}, []Variant{fullVariant, h2oVariant})
	for _, label := range []string{"full", "h2o@64"} {
		r := findRow(t, rows, "T", label)
		if r.NormalizedLow == nil || *r.NormalizedLow != 1 || *r.NormalizedHigh != 1 {
			t.Errorf("%s: normalised interval [%v, %v], want [1, 1]", label, r.NormalizedLow, r.NormalizedHigh)
		}
		if r.DiffLow == nil || *r.DiffLow != 0 || *r.DiffHigh != 0 {
			t.Errorf("%s: difference interval [%v, %v], want [0, 0]", label, r.DiffLow, r.DiffHigh)
		}
	}
}

// TestPairedHalf: the reference scores 1 on 40 IDs, the variant 1 on the
// first 20 and 0 on the others. Every resample's reference sum is 40, so the
// normalised score of a resample is X/40 with X ~ Binomial(40, 1/2), whose
// 2.5% and 97.5% quantiles are 14 and 26: the interval is about [0.35, 0.65]
// (a resample step of 0.025 either way), and the difference in points is
// 100 (ratio - 1) on the same resamples. The interval is also recomputed
// here from the documented seed with a loop of its own.
func TestPairedHalf(t *testing.T) {
	ref := scored("T", fullVariant, bernoulli(40, 40)...)
	variant := scored("T", h2oVariant, bernoulli(20, 40)...)
	rows := Summarize(append(ref, variant...), []string{"T"}, []Variant{fullVariant, h2oVariant})
	r := findRow(t, rows, "T", "h2o@64")
	if r.Normalized == nil || *r.Normalized != 0.5 || r.NormalizedLow == nil {
		t.Fatalf("normalised %v, interval [%v, %v]; want 0.5 and an interval", r.Normalized, r.NormalizedLow, r.NormalizedHigh)
	}
	low, high := *r.NormalizedLow, *r.NormalizedHigh
	if low <= 0.3 || high >= 0.7 || low < 0.325-1e-12 || low > 0.375+1e-12 || high < 0.625-1e-12 || high > 0.675+1e-12 {
		t.Errorf("normalised interval [%v, %v], want about [0.35, 0.65], inside (0.3, 0.7)", low, high)
	}
	if math.Abs(*r.DiffLow-100*(low-1)) > 1e-9 || math.Abs(*r.DiffHigh-100*(high-1)) > 1e-9 {
		t.Errorf("difference interval [%v, %v], want 100 (normalised - 1) = [%v, %v]", *r.DiffLow, *r.DiffHigh, 100*(low-1), 100*(high-1))
	}

	// The same statistic resampled here: FNV-1a 64 of task, label and
	// "paired", each followed by a zero byte, seeds a PCG with "namm".
	h := fnv.New64a()
	h.Write([]byte("T\x00h2o@64\x00paired\x00"))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x6e616d6d))
	var ratios []float64
	for range 2000 {
		var v, rf float64
		for range 40 {
			i := rng.IntN(40)
			v += variant[i].Score
			rf += ref[i].Score
		}
		ratios = append(ratios, v/rf)
	}
	sort.Float64s(ratios)
	quantile := func(p float64) float64 {
		pos := p * 1999
		i := int(pos)
		return ratios[i] + (pos-float64(i))*(ratios[i+1]-ratios[i])
	}
	if wl, wh := quantile(0.025), quantile(0.975); math.Abs(low-wl) > 1e-12 || math.Abs(high-wh) > 1e-12 {
		t.Errorf("normalised interval [%v, %v], recomputed [%v, %v]", low, high, wl, wh)
	}
}

// TestAllTasksStratified: three tasks of similar scores. The mean over tasks
// resamples within each task, so its interval holds the point estimate and
// is narrower than the widest task's (it averages three independent means).
func TestAllTasksStratified(t *testing.T) {
	tasks := []string{"A", "B", "C"}
	var results []SampleResult
	for i, task := range tasks {
		results = append(results, scored(task, fullVariant, bernoulli(24, 30)...)...)
		results = append(results, scored(task, h2oVariant, bernoulli(14+i, 30)...)...)
	}
	rows := Summarize(results, tasks, []Variant{fullVariant, h2oVariant})
	all := findRow(t, rows, AllTasks, "h2o@64")
	widest, widestNorm := 0.0, 0.0
	for _, task := range tasks {
		r := findRow(t, rows, task, "h2o@64")
		widest = max(widest, *r.ScoreHigh-*r.ScoreLow)
		widestNorm = max(widestNorm, *r.NormalizedHigh-*r.NormalizedLow)
	}
	check := func(what string, point float64, low, high *float64, widest float64) {
		if low == nil || high == nil {
			t.Fatalf("%s: no interval", what)
		}
		if *low > point || *high < point || *high-*low >= widest {
			t.Errorf("%s %v, interval [%v, %v]: want the point inside and a width under the widest task's %v", what, point, *low, *high, widest)
		}
	}
	check("mean score", all.Score, all.ScoreLow, all.ScoreHigh, widest)
	check("mean normalised", *all.Normalized, all.NormalizedLow, all.NormalizedHigh, widestNorm)
	diff := all.Score - findRow(t, rows, AllTasks, "full").Score
	if all.DiffLow == nil || *all.DiffLow > diff || *all.DiffHigh < diff || *all.DiffHigh >= 0 {
		t.Errorf("difference %v, interval [%v, %v]: want the point inside, all below 0", diff, all.DiffLow, all.DiffHigh)
	}
}

// TestIntervalsNeedTwoSamples: one sample has no interval, and the JSON and
// CSV leave it out; the mean over tasks has none when a task has one sample.
func TestIntervalsNeedTwoSamples(t *testing.T) {
	results := append(scored("A", fullVariant, 1), scored("A", h2oVariant, 1)...)
	results = append(results, scored("B", fullVariant, 1, 0, 1)...)
	results = append(results, scored("B", h2oVariant, 1, 1, 0)...)
	rows := Summarize(results, []string{"A", "B"}, []Variant{fullVariant, h2oVariant})
	names := []string{"score_low", "score_high", "normalized_low", "normalized_high", "diff_low", "diff_high"}
	for _, r := range rows {
		fields := []*float64{r.ScoreLow, r.ScoreHigh, r.NormalizedLow, r.NormalizedHigh, r.DiffLow, r.DiffHigh}
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		want := r.Task == "B"
		for i, f := range fields {
			if (f != nil) != want || strings.Contains(string(js), `"`+names[i]+`"`) != want {
				t.Errorf("%s %s: %s = %v, JSON %s; want it only for task B", r.Task, r.Label(), names[i], f, js)
			}
		}
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := writeSummaryCSV(w, rows); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.HasSuffix(lines[0], ","+strings.Join(names, ",")) {
		t.Errorf("summary.csv header %q, want it to end with %v", lines[0], names)
	}
	for i, r := range rows {
		if empty := strings.HasSuffix(lines[i+1], ",,,,,,"); empty != (r.Task != "B") {
			t.Errorf("summary.csv row %q: empty intervals %v, task %s", lines[i+1], empty, r.Task)
		}
	}
}
