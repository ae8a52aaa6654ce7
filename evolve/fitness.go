package evolve

import "fmt"

// RefEpsilon is added to the reference score in the denominator (§5).
const RefEpsilon = 1e-7

// Fitness is namm-reference §5's normalised aggregate: for each task, the
// mean score on its sampled prompts divided by (the mean full-cache score on
// the same prompts + 1e-7); the mean over tasks. scores and refs are
// [task][sample].
//
// Guard: a task whose references are all 0 on the drawn prompts would divide
// by 1e-7 and let one lucky answer outweigh every other task by 10^7. Such a
// task contributes its raw mean score instead (denominator 1): bounded in
// [0, 1], still rewarding a member that answers where the full cache cannot.
func Fitness(scores, refs [][]float64) (float64, error) {
	if len(scores) == 0 || len(scores) != len(refs) {
		return 0, fmt.Errorf("fitness: %d tasks of scores, %d of references", len(scores), len(refs))
	}
	var sum float64
	for t := range scores {
		if len(scores[t]) == 0 || len(scores[t]) != len(refs[t]) {
			return 0, fmt.Errorf("fitness: task %d has %d scores and %d references", t, len(scores[t]), len(refs[t]))
		}
		s, r := mean(scores[t]), mean(refs[t])
		if r == 0 {
			sum += s
		} else {
			sum += s / (r + RefEpsilon)
		}
	}
	return sum / float64(len(scores)), nil
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
