package engine

import (
	"runtime"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/internal/par"
	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/policy"
)

// Compiling ahead. On a GPU a session's first prompt meets its pass graphs
// one after another, and XLA compiles each as it is met, 5-20 s for a
// 32-layer model, on one thread: with an all-zero NAMM and prefix graphs
// the first 8k prompt of Llama-3-8B meets about 15 of them. A prefill knows which graphs it will meet if nothing is evicted: its
// chunks' widths, the quarters of the reserved capacity they attend to
// (Options.PrefixGraphs), the policy's statistics and state control for
// each, and the last chunk's logits. Evictions during a prefill compact the
// cache within its capacity (Session.keepCapacity), so they change only the
// quarters a pass attends to, whose graphs earlier chunks met. precompile
// compiles those in the background, several at once, while the first
// chunks run; a pass that reaches a graph still compiling waits for it (the
// graph's lock) instead of compiling it again. Passes after an eviction
// (without prefix graphs) may meet other capacities; those compile when
// met, as before.

// plannedPass is one distinct fused pass of a plan.
type plannedPass struct {
	pass     policy.Pass
	nReal    int
	width    int
	quarters int
	mask     model.StatMask
	logits   bool
	ctl      []float32 // the policy's state control (nil without a device state)
	key      string    // its graph's name in Engine.compiled
}

// statMask is the statistics the policy asks of a pass.
func (s *Session) statMask(pass policy.Pass) model.StatMask {
	var mask model.StatMask
	if s.policy == nil {
		return mask
	}
	needs := s.policy.NeedsFor(pass)
	if needs.ColSums {
		mask |= model.StatColSums
	}
	if needs.LastRow {
		mask |= model.StatLastRow
	}
	if needs.Rows {
		mask |= model.StatRows
	}
	if needs.KeyNorms {
		mask |= model.StatKeyNorms
	}
	return mask
}

// planPasses lists, once each, the fused passes that a prefill of n tokens
// from the session's state runs in a cache of the given capacity if nothing is
// evicted. Passes differing only in their tokens share a graph and appear
// once.
//
// The decoded tokens' graph is left to compile when met, after the
// prefill: XLA autotunes each graph's kernels by timing them on the GPU,
// and compiled ahead, while other compilations and the prefill ran, the
// decode graph got slower kernels (an all-zero NAMM's decode on
// Llama-3-8B was about 50% slower); the prefill graphs' did not.
func (s *Session) planPasses(n, capacity int) ([]plannedPass, error) {
	cs := s.e.opts.ChunkSize
	start := len(s.tokens)
	used := 0
	for _, lc := range s.cache.Layers {
		used = max(used, lc.Used)
	}
	quarters := func(u, width int) int {
		if !s.e.opts.PrefixGraphs {
			return 4
		}
		return prefixQuarters(capacity, u, width)
	}
	var out []plannedPass
	seen := map[string]bool{}
	add := func(p plannedPass) error {
		if s.dev != nil {
			ctl, err := s.dev.StateControl(p.pass, p.nReal, p.width)
			if err != nil {
				return err
			}
			p.ctl = ctl
		}
		p.key = s.fusedPassKey(p.mask, p.width, capacity, p.quarters, p.logits, len(p.ctl))
		if !seen[p.key] {
			seen[p.key] = true
			out = append(out, p)
		}
		return nil
	}
	for i := 0; i < n; {
		pos := start + i
		k := min(cs-pos%cs, n-i)
		pass := policy.Pass{Phase: policy.Prefill, Start: pos, NewTokens: k, LastPrefill: i+k == n, PromptLen: start + n}
		q := quarters(used+i, cs)
		if err := add(plannedPass{pass: pass, nReal: k, width: cs, quarters: q, mask: s.statMask(pass), logits: pass.LastPrefill}); err != nil {
			return nil, err
		}
		if ka, ok := s.policy.(policy.KeepsAll); pass.LastPrefill && s.policy != nil && !(ok && ka.KeepsAll()) && s.e.opts.PrefixGraphs {
			// A policy that evicts leaves the last chunk fewer occupied
			// quarters: its logits graph for those too.
			for fewer := 1; fewer < q; fewer++ {
				if err := add(plannedPass{pass: pass, nReal: k, width: cs, quarters: fewer, mask: s.statMask(pass), logits: true}); err != nil {
					return nil, err
				}
			}
		}
		i += k
	}
	return out, nil
}

// precompile starts compiling, in the background, the fused pass graphs a
// prefill of n tokens will run (see above). It returns at once; call it
// after the prefill has reserved its capacity.
func (s *Session) precompile(n int) {
	e := s.e
	if e.hostCache() || !e.opts.Precompile || !s.fusable() || n <= e.opts.ChunkSize {
		return
	}
	capacity := s.cache.Layers[0].Capacity
	if pc, ok := s.policy.(policy.Precompiler); ok && s.dev != nil {
		// The policy's own graphs (the NAMM's scorer) alongside.
		st, ps, end := s.cache.Layers[0].Feat.Shape(), s.cache.Layers[0].Pos.Shape(), len(s.tokens)+n
		e.background.Add(1)
		go func() {
			defer e.background.Done()
			pc.Precompile(st, ps, len(s.cache.Layers), end)
		}()
	}
	plans, err := s.planPasses(n, capacity)
	if err != nil {
		return // the pass itself will report it
	}
	var todo []plannedPass
	for _, p := range plans {
		e.mu.Lock()
		_, done := e.compiled[p.key]
		e.mu.Unlock()
		if !done {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return
	}
	// One placeholder per cache buffer shape, shared by every layer and
	// graph: compiling reads only shapes. Made on the device (no host copy),
	// here, before the passes donate the real buffers.
	lc := &s.cache.Layers[0]
	bufs := []*tensors.Tensor{lc.K, lc.V, lc.Pos}
	if s.dev != nil {
		bufs = append(bufs, lc.Feat)
	}
	var cacheShapes []shapes.Shape
	for _, t := range bufs {
		cacheShapes = append(cacheShapes, t.Shape())
	}
	e.background.Add(1)
	go func() {
		defer e.background.Done()
		var holders []*tensors.Tensor
		defer func() {
			for _, h := range holders {
				_ = h.FinalizeAll()
			}
		}()
		for _, sh := range cacheShapes {
			h, err := graph.ExecOnce(e.Backend, func(g *graph.Graph) *graph.Node { return graph.Zeros(g, sh) })
			if err != nil {
				return
			}
			holders = append(holders, h)
		}
		// A few at a time: XLA autotunes each graph's kernels by timing
		// them on the GPU, and the compilations slow each other down.
		par.For(len(todo), min(4, max(1, runtime.NumCPU()/2)), func(i int) {
			s.precompilePass(todo[i], capacity, holders)
		})
	}()
}

// precompilePass compiles one planned pass's graph with placeholder inputs
// of its shapes. Errors are dropped: the pass meets them when it runs.
func (s *Session) precompilePass(p plannedPass, capacity int, holders []*tensors.Tensor) {
	e := s.e
	cfg := e.Config
	exec, err := e.fusedExec(p.mask, s.dev, p.logits, p.quarters)
	if err != nil {
		return
	}
	w, d, half := p.width, cfg.HiddenSize, len(e.invFreq)
	zeros := func(dt dtypes.DType, dims ...int) *tensors.Tensor { return tensors.FromShape(shapes.Make(dt, dims...)) }
	qpos, qw := passQueries(p.pass.Start, p.nReal, w)
	dt := e.Weights.DType
	pass := []any{zeros(dt, w, d), zeros(dt, w, half), zeros(dt, w, half),
		tensors.FromFlatDataAndDimensions(qpos, w), tensors.FromFlatDataAndDimensions(qw, 2, w)}
	var ctlT *tensors.Tensor
	if p.ctl != nil {
		ctlT = tensors.FromFlatDataAndDimensions(p.ctl, len(p.ctl))
	}
	args, key := s.fusedPassArgs(p.mask, w, p.nReal, capacity, p.quarters, p.logits, pass, ctlT, make([]int32, cfg.NumLayers))
	for l := range cfg.NumLayers {
		for _, h := range holders {
			args = append(args, h)
		}
		for _, wt := range e.Weights.Layers[l].List() {
			args = append(args, wt)
		}
	}
	t0 := time.Now()
	if err := exec.PreCompile(args...); err != nil {
		return
	}
	e.mu.Lock()
	if _, ok := e.compiled[key]; !ok {
		e.compiled[key] = time.Since(t0)
	}
	if e.ahead == nil {
		e.ahead = map[string]bool{}
	}
	e.ahead[key] = true
	e.mu.Unlock()
}
