package engine

import (
	"fmt"
	"math"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/internal/bucket"
	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/policy"
)

// passInput describes one sequence's pass (a prefill chunk or a decoded
// token) to the forward paths: its tokens laid out as nReal real ones
// padded to width, what the policy asked of it, and the cache as it was
// before it. A batch is a list of them, one per sequence (batch.go).
type passInput struct {
	pass       policy.Pass
	mask       model.StatMask // statistics the policy asked for
	nReal      int            // real tokens
	width      int            // real tokens plus padding
	wantLogits bool           // the last real token's logits
	embed      []float32      // [width, D] embeddings (padding rows zero)
	qpos       []int32        // [width] positions, -1 for padding
	qw         []float32      // [2, width]: 1 on real queries; one-hot on the last real one
	cos, sin   []float32      // [width, H/2] RoPE tables (padding: position 0)
	ctl        []float32      // the policy's state control, or nil without device state
	// Per layer, before the pass: the slots in use, and the key columns its
	// statistics cover (the capacity, or the attended prefix of a fused pass).
	prevUsed, statSlots []int
	// quarters of the capacity a fused pass attends to (prefixQuarters; 4
	// for all of it and on the other paths).
	quarters int
	start    time.Time
}

// attend makes a fused pass attend to quarters/4 of its capacity, at least
// the prefix it needs (a batched pass attends to the most any of its
// sequences needs; the spare slots are empty and masked).
func (in *passInput) attend(quarters, capacity int) {
	in.quarters = quarters
	for l := range in.statSlots {
		in.statSlots[l] = capacity * quarters / 4
	}
}

// graphInputs are a pass's inputs as backend tensors (the graph paths).
type graphInputs struct {
	embed, cos, sin, qpos, qw, ctl *tensors.Tensor
}

func (in *passInput) graphInputs(e *Engine) graphInputs {
	g := graphInputs{
		embed: e.toDType(in.embed, in.width, e.Config.HiddenSize),
		cos:   e.toDType(in.cos, in.width, len(e.invFreq)),
		sin:   e.toDType(in.sin, in.width, len(e.invFreq)),
		qpos:  tensors.FromFlatDataAndDimensions(in.qpos, in.width),
		qw:    tensors.FromFlatDataAndDimensions(in.qw, 2, in.width),
	}
	if in.ctl != nil {
		g.ctl = tensors.FromFlatDataAndDimensions(in.ctl, len(in.ctl))
	}
	return g
}

// passOutput is what a forward path returns for one sequence: per layer the
// statistics asked for (StatMask bit order), and the logits when asked.
type passOutput struct {
	stats  [][]*tensors.Tensor
	logits []float32
}

// forward runs one pass of len(ids) real tokens padded to width, then lets
// the policy evict. It returns the last real token's logits when wantLogits.
func (s *Session) forward(ids []int, pass policy.Pass, width int, wantLogits bool) ([]float32, error) {
	in, err := s.beginPass(ids, pass, width, wantLogits)
	if err != nil {
		return nil, err
	}
	var out passOutput
	switch {
	case s.e.hostProjections():
		outs, err := s.e.forwardHost([]*Session{s}, []*passInput{in})
		if err != nil {
			return nil, err
		}
		out = outs[0]
	case s.fusable():
		out, err = s.forwardFused(in)
	default:
		outs, err := s.e.forwardLayers([]*Session{s}, []*passInput{in})
		if err != nil {
			return nil, err
		}
		out = outs[0]
	}
	if err != nil {
		return nil, err
	}
	if err := s.endPass(in, out); err != nil {
		return nil, err
	}
	return out.logits, nil
}

// recoverPass turns a panic of the backend during a pass (GoMLX reports a
// device's failures, such as running out of memory, by panicking) into the
// pass's error, and marks the session broken: its cache may be
// half-updated.
func (s *Session) recoverPass(err *error) {
	if r := recover(); r != nil {
		*err = s.breakOn(r)
	}
}

// breakOn marks the session broken by the backend's panic r and returns
// the error every later pass will.
func (s *Session) breakOn(r any) error {
	s.broken = fmt.Errorf("engine: a pass failed in the backend, the session cannot go on: %v", r)
	return s.broken
}

// beginPass checks a pass's tokens, lays out its inputs and makes room for
// it in every layer.
func (s *Session) beginPass(ids []int, pass policy.Pass, width int, wantLogits bool) (*passInput, error) {
	e := s.e
	cfg := e.Config
	d := cfg.HiddenSize
	if len(ids) == 0 || len(ids) > width {
		return nil, fmt.Errorf("engine: a pass of %d tokens in width %d", len(ids), width)
	}
	for _, id := range ids {
		if id < 0 || id >= cfg.VocabSize {
			return nil, fmt.Errorf("engine: token id %d out of range [0, %d)", id, cfg.VocabSize)
		}
	}
	in := &passInput{pass: pass, mask: s.statMask(pass), nReal: len(ids), width: width, wantLogits: wantLogits}
	in.embed = make([]float32, width*d)
	for t, id := range ids {
		copy(in.embed[t*d:(t+1)*d], e.Weights.Embed[id*d:(id+1)*d])
	}
	in.qpos, in.qw = passQueries(pass.Start, len(ids), width)
	in.cos, in.sin = e.ropeAngles(in.qpos)
	if s.dev != nil {
		ctl, err := s.dev.StateControl(pass, len(ids), width)
		if err != nil {
			return nil, fmt.Errorf("engine: policy %s: %w", s.policy.Name(), err)
		}
		in.ctl = ctl
	}
	// Make room for the pass in every layer.
	caps := make([]int, cfg.NumLayers)
	for l, lc := range s.cache.Layers {
		if lc.Used+width > lc.Capacity && lc.HasHoles() {
			// Holes (punchHoles): compact before growing.
			if err := s.regather(l, nil, bucket.Round(lc.Tokens()+2*width)); err != nil {
				return nil, err
			}
			lc = s.cache.Layers[l]
		}
		caps[l] = lc.Capacity
		if lc.Used+width > lc.Capacity {
			caps[l] = bucket.Round(lc.Used + 2*width)
		}
	}
	if err := s.setCapacities(caps, nil); err != nil {
		return nil, err
	}
	in.prevUsed = make([]int, cfg.NumLayers)
	in.statSlots = make([]int, cfg.NumLayers)
	quarters := 4
	if !e.hostProjections() && s.fusable() {
		// The statistics' key axis is the attended prefix of the capacity.
		quarters = s.passQuarters(width)
	}
	in.quarters = quarters
	for l, lc := range s.cache.Layers {
		in.statSlots[l], in.prevUsed[l] = lc.Capacity*quarters/4, lc.Used
	}
	s.tokens = append(s.tokens, ids...)
	in.start = time.Now()
	return in, nil
}

// endPass records a pass's time, lets the policy evict and accounts the
// cache.
func (s *Session) endPass(in *passInput, out passOutput) error {
	e := s.e
	phase := 0
	if in.pass.Phase == policy.Decode {
		phase = 1
	}
	if e.opts.Profile {
		// The pass's hidden states (not a cache buffer, which the next pass
		// donates): reading them waits for the whole pass.
		if err := s.hidden.ConstBytes(func([]byte) {}); err != nil {
			return fmt.Errorf("engine: waiting for the pass: %w", err)
		}
		s.stats.PassTime[phase] += time.Since(in.start)
	}
	if s.policy != nil {
		t1 := time.Now()
		if err := s.applyPolicy(in.pass, in.mask, out.stats, in.nReal, in.prevUsed, in.statSlots, in.width); err != nil {
			return err
		}
		if e.opts.Profile {
			s.stats.PolicyTime[phase] += time.Since(t1)
		}
	}
	s.account()
	s.notify(in.pass)
	return nil
}

// ropeAngles returns cos and sin [T, H/2] for the positions (padding: 0).
func (e *Engine) ropeAngles(positions []int32) (c, s []float32) {
	half := len(e.invFreq)
	c = make([]float32, len(positions)*half)
	s = make([]float32, len(positions)*half)
	for t, p := range positions {
		if p < 0 {
			p = 0
		}
		for i, f := range e.invFreq {
			// transformers computes the angle in float32.
			a := float64(float32(f) * float32(p))
			c[t*half+i] = float32(math.Cos(a))
			s[t*half+i] = float32(math.Sin(a))
		}
	}
	return c, s
}
