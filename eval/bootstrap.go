package eval

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
)

// Resamples is the number of bootstrap resamples behind every interval.
// 2,000 keeps the Monte Carlo error of the 2.5th and 97.5th percentiles small
// next to the interval's own width (about 50 resamples lie beyond each end)
// while a summary of thousands of samples still takes milliseconds.
const Resamples = 2000

// intervalTail is the share of the resampled statistics left out below the
// low end and above the high end: a 95% interval.
const intervalTail = 0.025

// stratum is one task's samples as the bootstrap draws them.
type stratum struct {
	scores []float64 // the variant's sample scores, in [0, 1]
	// variant[i] and reference[i] are the scores of the i-th sample ID that
	// the variant and the reference both ran.
	variant, reference []float64
	// ratio: the reference's shared scores do not sum to 0, so the stratum
	// has a normalised score (as normalize computes it).
	ratio bool
}

// newStratum pairs rs with the reference's results ref by sample ID.
func newStratum(rs, ref []SampleResult) stratum {
	refScore := map[string]float64{}
	for _, r := range ref {
		refScore[r.ID] = r.Score
	}
	var s stratum
	refSum := 0.0
	for _, r := range rs {
		s.scores = append(s.scores, r.Score)
		if x, ok := refScore[r.ID]; ok {
			s.variant = append(s.variant, r.Score)
			s.reference = append(s.reference, x)
			refSum += x
		}
	}
	s.ratio = refSum != 0
	return s
}

// bootstrapRand is the generator of one row's resamples, seeded from the
// row's task and label and from what is resampled, so that the same results
// give the same intervals on every run and machine.
func bootstrapRand(task, label, stream string) *rand.Rand {
	h := fnv.New64a()
	for _, s := range []string{task, label, stream} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return rand.New(rand.NewPCG(h.Sum64(), 0x6e616d6d)) // "namm"
}

// scoreInterval is the percentile bootstrap interval of the mean over strata
// of each stratum's mean score x100, resampling each stratum's samples with
// replacement independently (one stratum: a task row; several: the mean over
// tasks). It is undefined when there is no stratum or one has fewer than 2
// samples.
func scoreInterval(task, label string, strata []stratum) (low, high *float64) {
	if len(strata) == 0 {
		return nil, nil
	}
	for _, s := range strata {
		if len(s.scores) < 2 {
			return nil, nil
		}
	}
	rng := bootstrapRand(task, label, "score")
	stats := make([]float64, Resamples)
	for b := range stats {
		total := 0.0
		for _, s := range strata {
			sum := 0.0
			for range s.scores {
				sum += s.scores[rng.IntN(len(s.scores))]
			}
			total += 100 * sum / float64(len(s.scores))
		}
		stats[b] = total / float64(len(strata))
	}
	return percentiles(stats)
}

// pairedIntervals are the paired bootstrap intervals of the normalised score
// and of the score difference to the reference (in points). Each resample
// draws, in every stratum independently, the shared sample IDs with
// replacement; the normalised score is the mean over the strata that have
// one of sum(variant) / sum(reference) on the drawn IDs, the difference the
// mean over strata of 100 (sum(variant) - sum(reference)) / IDs. A resample
// where a counted reference sum is 0 gives no ratio; with more than half
// such resamples there is no normalised interval. Both are undefined when a
// stratum has exactly one shared ID, and each when no stratum counts for it.
func pairedIntervals(task, label string, strata []stratum) (normLow, normHigh, diffLow, diffHigh *float64) {
	var paired []stratum
	ratios := 0
	for _, s := range strata {
		switch {
		case len(s.variant) == 0:
			continue
		case len(s.variant) < 2:
			return nil, nil, nil, nil
		}
		paired = append(paired, s)
		if s.ratio {
			ratios++
		}
	}
	if len(paired) == 0 {
		return nil, nil, nil, nil
	}
	rng := bootstrapRand(task, label, "paired")
	diffs := make([]float64, 0, Resamples)
	norms := make([]float64, 0, Resamples)
	for range Resamples {
		diff, norm, ok := 0.0, 0.0, true
		for _, s := range paired {
			sum, refSum := 0.0, 0.0
			for range s.variant {
				i := rng.IntN(len(s.variant))
				sum += s.variant[i]
				refSum += s.reference[i]
			}
			diff += 100 * (sum - refSum) / float64(len(s.variant))
			if s.ratio {
				if refSum == 0 {
					ok = false
				} else {
					norm += sum / refSum
				}
			}
		}
		diffs = append(diffs, diff/float64(len(paired)))
		if ratios > 0 && ok {
			norms = append(norms, norm/float64(ratios))
		}
	}
	diffLow, diffHigh = percentiles(diffs)
	if 2*len(norms) >= Resamples {
		normLow, normHigh = percentiles(norms)
	}
	return normLow, normHigh, diffLow, diffHigh
}

// percentiles sorts stats and returns their 2.5th and 97.5th percentiles
// (linear interpolation between order statistics).
func percentiles(stats []float64) (low, high *float64) {
	slices.Sort(stats)
	at := func(p float64) *float64 {
		h := p * float64(len(stats)-1)
		i := int(math.Floor(h))
		if i+1 >= len(stats) {
			return ptr(stats[len(stats)-1])
		}
		if stats[i] == stats[i+1] {
			return ptr(stats[i])
		}
		return ptr(stats[i] + (h-float64(i))*(stats[i+1]-stats[i]))
	}
	return at(intervalTail), at(1 - intervalTail)
}
