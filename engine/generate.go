package engine

import (
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

// Generate prefills prompt and decodes greedily: a batch of one sequence.
func (s *Session) Generate(prompt []int, maxNew int, stop []int, onToken func(int)) ([]int, error) {
	if maxNew <= 0 {
		_, err := s.Prefill(prompt)
		return nil, err
	}
	b := s.e.NewBatch()
	seq := &Seq{Session: s, Prompt: prompt, MaxNew: maxNew, Stop: stop, OnToken: onToken}
	b.Add(seq)
	b.Run()
	return seq.Out, seq.Err
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
