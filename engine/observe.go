package engine

import (
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/policy"
)

// PolicyStep is what one pass's policy step did to a session's cache: the
// original positions each layer's KV heads evicted in it, and the tokens
// every layer holds after it. A session reports one per pass
// (SetObserver), evicting or not, so the steps also tell how the cache
// grew.
type PolicyStep struct {
	Pass policy.Pass
	// Evicted is [layer][KV head] the positions evicted in this pass,
	// ascending; a layer that evicted nothing is nil.
	Evicted [][][]int32
	// Tokens is per layer the tokens held after the step (max over heads).
	Tokens []int
}

// SetObserver has fn called after each of the session's passes with what
// the policy's step did (on the goroutine running the pass; fn must not
// block). The evictions are read where the policy's answer is applied to
// the cache (applyPolicy), so they are exactly the tokens the cache let go.
func (s *Session) SetObserver(fn func(PolicyStep)) { s.observe = fn }

// recordEvicted notes the positions layer l's heads drop when keep (a
// policy's checked answer) is applied.
func (s *Session) recordEvicted(l int, keep [][]int) {
	if s.observe == nil {
		return
	}
	if s.evicted == nil {
		s.evicted = make([][][]int32, len(s.cache.Layers))
	}
	heads := s.cache.Layers[l].Heads
	out := make([][]int32, len(heads))
	for k, h := range heads {
		j := 0
		for i, p := range h.Pos {
			if j < len(keep[k]) && keep[k][j] == i {
				j++
				continue
			}
			out[k] = append(out[k], p)
		}
	}
	s.evicted[l] = out
}

// notify reports a pass's step to the observer.
func (s *Session) notify(pass policy.Pass) {
	if s.observe == nil {
		return
	}
	st := PolicyStep{Pass: pass, Evicted: s.evicted, Tokens: s.CacheTokens()}
	if st.Evicted == nil {
		st.Evicted = make([][][]int32, len(s.cache.Layers))
	}
	s.evicted = nil
	s.observe(st)
}

// CachedPositions reads, per layer and KV head, the original positions the
// cache's positions buffer holds (the one attention masks with), in slot
// order. It reads the buffer itself, not the session's index of it, so it
// is an independent account of what the cache keeps.
func (s *Session) CachedPositions() [][][]int32 {
	out := make([][][]int32, len(s.cache.Layers))
	for l, lc := range s.cache.Layers {
		kh, c := len(lc.Heads), lc.Capacity
		flat := tensors.MustCopyFlatData[int32](lc.Pos)
		out[l] = make([][]int32, kh)
		for k := range kh {
			for _, p := range flat[k*c : (k+1)*c] {
				if p >= 0 {
					out[l][k] = append(out[l][k], p)
				}
			}
		}
	}
	return out
}
