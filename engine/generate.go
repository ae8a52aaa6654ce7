package engine

import (
	"fmt"

	"github.com/namm-dev/namm/policy"
)

// Greedy prefills prompt with a fresh full-cache session and decodes up to
// maxNew tokens greedily, stopping after any id in stop. onToken, if set, is
// called with each new token as it is produced.
func (e *Engine) Greedy(prompt []int, maxNew int, stop []int, onToken func(int)) ([]int, error) {
	s, err := e.NewSession(nil)
	if err != nil {
		return nil, err
	}
	return s.Generate(prompt, maxNew, stop, onToken)
}

// Generate prefills prompt and decodes greedily.
func (s *Session) Generate(prompt []int, maxNew int, stop []int, onToken func(int)) ([]int, error) {
	logits, err := s.Prefill(prompt)
	if err != nil {
		return nil, err
	}
	var out []int
	for len(out) < maxNew {
		next := Argmax(logits)
		out = append(out, next)
		if onToken != nil {
			onToken(next)
		}
		if contains(stop, next) || len(out) == maxNew {
			break
		}
		if logits, err = s.Decode(next); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Policy returns the session's memory policy.
func (s *Session) Policy() policy.Policy { return s.policy }

// Argmax returns the index of the largest logit (the first one on ties), the
// greedy choice.
func Argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func keyf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
