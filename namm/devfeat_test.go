package namm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/internal/bucket"
	"github.com/namm-dev/namm/policy"
)

// TestDeviceStateMatchesHost drives the in-graph state update (updateState
// with StateControl's vectors) and the host streaming features
// (headFeatures, tested against the batch STFT/EMA in namm_test.go) with the
// same causal attention rows: aligned prefill chunks, a partial last chunk
// (a block left half-filled) and decoded tokens across a block boundary.
// Omega, the tail and the open block must agree for every token.
func TestDeviceStateMatchesHost(t *testing.T) {
	const (
		kh       = 2
		capacity = 112 // cache slots; token at position p lives in slot p
		width    = 32  // prefill chunk
	)
	be := testBackend(t)
	ex, err := NewExecAny(be, func(in []*Node) []*Node { return []*Node{updateState(in[0], in[1], in[2])} })
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(41, 42))
	p := &Policy{}
	host := make([]headFeatures, kh)
	state := make([]float32, kh*capacity*StateWidth) // [K, C, W]

	run := func(pass policy.Pass, w int) {
		t.Helper()
		n := pass.NewTokens
		keys := capacity + w
		rows := make([]float32, kh*w*keys) // [K, T, C+T]
		hostRows := make([][][]float32, kh)
		for k := range kh {
			host[k].grow(n)
			hostRows[k] = make([][]float32, n)
			for q := range n {
				qp := pass.Start + q
				hr := make([]float32, host[k].n)
				for tok := 0; tok <= qp; tok++ {
					a := float32(r.Float64())
					col := tok // cached token: its slot
					if tok >= pass.Start {
						col = capacity + tok - pass.Start
					}
					rows[(k*w+q)*keys+col] = a
					hr[tok] = a
				}
				hostRows[k][q] = hr
			}
		}
		ctl, err := p.StateControl(pass, n, w)
		if err != nil {
			t.Fatal(err)
		}
		full := make([]float32, kh*keys*StateWidth)
		for k := range kh {
			copy(full[k*keys*StateWidth:], state[k*capacity*StateWidth:(k+1)*capacity*StateWidth])
		}
		out, err := ex.Exec(tensors.FromFlatDataAndDimensions(rows, kh, w, keys),
			tensors.FromFlatDataAndDimensions(full, kh, keys, StateWidth), tensors.FromFlatDataAndDimensions(ctl, len(ctl)))
		if err != nil {
			t.Fatal(err)
		}
		next := tensors.MustCopyFlatData[float32](out[0])
		for k := range kh {
			copy(state[k*capacity*StateWidth:(k+1)*capacity*StateWidth], next[k*keys*StateWidth:(k*keys+capacity)*StateWidth])
			for j := range n { // the pass's tokens go to their slots
				src := (k*keys + capacity + j) * StateWidth
				copy(state[(k*capacity+pass.Start+j)*StateWidth:], next[src:src+StateWidth])
			}
			for q, row := range hostRows[k] {
				slot := (pass.Start + q) % Hop
				host[k].addRow(slot, row)
				if slot == Hop-1 {
					host[k].foldBlock()
				}
			}
		}
		for k := range kh {
			h := &host[k]
			for i := range h.n {
				got := state[(k*capacity+i)*StateWidth : (k*capacity+i+1)*StateWidth]
				want := append(append(append([]float32(nil), h.omega[i*Bins:(i+1)*Bins]...), h.prev[i*Hop:(i+1)*Hop]...), h.cur[i*Hop:(i+1)*Hop]...)
				for j := range want {
					if d := math.Abs(float64(got[j] - want[j])); d > 1e-5+1e-5*math.Abs(float64(want[j])) {
						t.Fatalf("pass at %d (+%d): head %d token %d value %d: graph %g, host %g", pass.Start, n, k, i, j, got[j], want[j])
					}
				}
			}
		}
	}
	run(policy.Pass{Phase: policy.Prefill, Start: 0, NewTokens: 32}, width)
	run(policy.Pass{Phase: policy.Prefill, Start: 32, NewTokens: 32}, width)
	run(policy.Pass{Phase: policy.Prefill, Start: 64, NewTokens: 21, LastPrefill: true}, width) // ends mid-block
	for pos := 85; pos < 100; pos++ {                                                           // fold at 95
		run(policy.Pass{Phase: policy.Decode, Start: pos, NewTokens: 1}, 1)
	}
	if host[0].n != 100 {
		t.Fatalf("host tracked %d tokens", host[0].n)
	}
}

// TestStateControlRefusesUnaligned: a prefill chunk that does not start on
// a 16-token block is refused with a message that names the fix.
func TestStateControlRefusesUnaligned(t *testing.T) {
	p := &Policy{}
	if _, err := p.StateControl(policy.Pass{Phase: policy.Prefill, Start: 8, NewTokens: 16}, 16, 32); err == nil {
		t.Fatal("unaligned chunk accepted")
	}
	if _, err := p.StateControl(policy.Pass{Phase: policy.Prefill, Start: 0, NewTokens: 20}, 20, 20); err == nil {
		t.Fatal("chunk width 20 accepted")
	}
}

// TestScoreStateMatchesHost: the device-state scorer (omega read from the
// state, recency from positions, backward mask from positions) equals the
// host path (buildInputs + Score per head) on a cache with empty slots
// between heads' tokens, with the heads scored in overlapping groups, in
// one query block and in four (scoreBlocks).
func TestScoreStateMatchesHost(t *testing.T) {
	// On a sequential backend of its own: query blocks are off on the
	// parallel pure-Go executor (see scoreBlocks).
	seq, err := backends.NewWithConfig("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	blocksOnGo = true
	defer func() { blocksOnGo = false }()
	for _, c := range [][2]int{{600, 250}, {1400, 1100}} { // BAM runs over the first 256 / 1280 slots only
		t.Run(fmt.Sprintf("c=%d,used=%d,blocks=%d", c[0], c[1], scoreBlocks(seq, bucket.Round(c[1]))), func(t *testing.T) {
			testScoreState(t, seq, c[0], c[1])
		})
	}
}

func testScoreState(t *testing.T, be backends.Backend, c, used int) {
	const kh = 3
	r := rand.New(rand.NewPCG(51, 52))
	state := make([]float32, kh*c*StateWidth)
	for i := range state {
		state[i] = float32(r.Float64() * 0.01)
	}
	pos := make([]int32, kh*c)
	slots := make([][]int, kh)
	positions := make([][]int32, kh)
	for k := range kh {
		p := int32(0)
		for s := range c {
			pos[k*c+s] = -1
			if s < used && (k == 0 || r.IntN(4) != 0) || s == used-1 {
				p += int32(1 + r.IntN(3))
				pos[k*c+s] = p
				slots[k] = append(slots[k], s)
				positions[k] = append(positions[k], p)
			}
		}
		pos[k*c+used-1] = int32(4 * used) // the newest token, in every head (past every other position)
		positions[k][len(positions[k])-1] = int32(4 * used)
	}
	f := testFile(randFlat(r, 0.2))
	params, err := ParamsFromFlat(f.Params)
	if err != nil {
		t.Fatal(err)
	}
	omegas, err := stateOmegas(tensors.FromFlatDataAndDimensions(state, kh, c, StateWidth), slots)
	if err != nil {
		t.Fatal(err)
	}
	old := scoreMaxElems
	scoreMaxElems = 2 * bucket.Round(used) * bucket.Round(used) // groups of 2 heads over 3: the last overlaps
	defer func() { scoreMaxElems = old }()
	sc, err := NewScorer(be)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sc.ScoreState(&params, &f.Norm, tensors.FromFlatDataAndDimensions(state, kh, c, StateWidth), tensors.FromFlatDataAndDimensions(pos, kh, c), used)
	if err != nil {
		t.Fatal(err)
	}
	for k := range kh {
		xs := make([][FeatDims]float32, len(slots[k]))
		buildInputs(omegas[k], positions[k], &f.Norm, xs)
		want := Score(&params, xs)
		for i, slot := range slots[k] {
			if d := math.Abs(float64(got[k*c+slot] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("head %d token %d (slot %d): graph score %g, host %g", k, i, slot, got[k*c+slot], want[i])
			}
		}
	}
}

// TestScoreLayersMatchesScoreState: several layers per execution, the last
// group overlapping the previous one (5 layers in groups of 3), give each
// layer's ScoreState scores, in the graph PrecompileLayers compiled.
func TestScoreLayersMatchesScoreState(t *testing.T) {
	seq, err := backends.NewWithConfig("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	defer func(v int) { layersPerScoreOnGo = v }(layersPerScoreOnGo)
	layersPerScoreOnGo = 3
	const nl, kh, c = 5, 2, 700
	r := rand.New(rand.NewPCG(61, 62))
	f := testFile(randFlat(r, 0.2))
	params, err := ParamsFromFlat(f.Params)
	if err != nil {
		t.Fatal(err)
	}
	states, pos := make([]*tensors.Tensor, nl), make([]*tensors.Tensor, nl)
	used := make([]int, nl)
	for l := range nl {
		used[l] = 100 + 90*l // the largest, 460, sets the scored slots (512)
		st := make([]float32, kh*c*StateWidth)
		ps := make([]int32, kh*c)
		for k := range kh {
			p := int32(0)
			for sl := range c {
				ps[k*c+sl] = -1
				if sl < used[l] {
					p += int32(1 + r.IntN(3))
					ps[k*c+sl] = p
					for w := range StateWidth {
						st[(k*c+sl)*StateWidth+w] = float32(r.Float64() * 0.01)
					}
				}
			}
		}
		states[l] = tensors.FromFlatDataAndDimensions(st, kh, c, StateWidth)
		pos[l] = tensors.FromFlatDataAndDimensions(ps, kh, c)
	}
	sc, err := NewScorer(seq)
	if err != nil {
		t.Fatal(err)
	}
	// Compiled ahead for the 512 scored slots, the graph ScoreLayers then
	// runs is that one: no further build.
	if err := sc.PrecompileLayers(&params, &f.Norm, states[0].Shape(), pos[0].Shape(), nl, 512); err != nil {
		t.Fatal(err)
	}
	built := sc.builds.Load()
	if built != 1 {
		t.Errorf("PrecompileLayers built %d graphs, want 1", built)
	}
	got, err := sc.ScoreLayers(&params, &f.Norm, states, pos, used)
	if err != nil {
		t.Fatal(err)
	}
	if n := sc.builds.Load() - built; n != 0 {
		t.Errorf("ScoreLayers built %d graphs after they were compiled ahead", n)
	}
	for l := range nl {
		want, err := sc.ScoreState(&params, &f.Norm, states[l], pos[l], used[l])
		if err != nil {
			t.Fatal(err)
		}
		for k := range kh {
			for sl := range used[l] {
				a, b := got[l][k*c+sl], want[k*c+sl]
				if d := math.Abs(float64(a - b)); d > 1e-4*(1+math.Abs(float64(b))) {
					t.Fatalf("layer %d head %d slot %d: ScoreLayers %g, ScoreState %g", l, k, sl, a, b)
				}
			}
		}
	}
}

// TestDeviceFeaturesEvictSame: a NAMM whose in-graph features are scored on
// the backend (deviceFeatures: every layer in Prepare, or layer by layer)
// keeps the tokens that the same NAMM keeps reading the features from the
// cache and scoring them with the Go loop (cacheFeatures), over a step of
// two layers whose heads have holes.
func TestDeviceFeaturesEvictSame(t *testing.T) {
	const layers, kh, c, used = 2, 3, 512, 500
	r := rand.New(rand.NewPCG(61, 62))
	flat := randFlat(r, 0.2)
	flat[4171] = -0.4 // a bias that evicts some tokens
	pass := policy.Pass{Phase: policy.Prefill, Start: 384, NewTokens: 128, LastPrefill: true, PromptLen: 512}
	views := make([]*policy.LayerView, layers)
	for l := range views {
		state := make([]float32, kh*c*StateWidth)
		for i := range state {
			state[i] = float32(r.Float64() * 0.01)
		}
		pos := make([]int32, kh*c)
		slots := make([][]int, kh)
		positions := make([][]int32, kh)
		for k := range kh {
			for s := range c {
				pos[k*c+s] = -1
				if s < used && (s >= used-pass.NewTokens || r.IntN(4) != 0) {
					pos[k*c+s] = int32(s + 12)
					slots[k] = append(slots[k], s)
					positions[k] = append(positions[k], int32(s+12))
				}
			}
		}
		views[l] = &policy.LayerView{Layer: l, Pass: pass, Positions: positions, State: &policy.DeviceView{
			State: tensors.FromFlatDataAndDimensions(state, kh, c, StateWidth),
			Pos:   tensors.FromFlatDataAndDimensions(pos, kh, c), Slots: slots}}
	}
	info := policy.ModelInfo{NumLayers: layers, NumKVHeads: kh, NumHeads: 2 * kh, HeadDim: 8}
	run := func(backend, prepare bool) [][][]int {
		p, err := New(testFile(flat), Config{Mode: PerHead, Features: FeaturesGraph})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Reset(info); err != nil {
			t.Fatal(err)
		}
		if backend {
			if err := p.UseBackend(testBackend(t)); err != nil {
				t.Fatal(err)
			}
		}
		if _, isDevice := p.feat.(*deviceFeatures); isDevice != backend {
			t.Fatalf("backend %v: features %T", backend, p.feat)
		}
		if prepare {
			if err := p.Prepare(views); err != nil {
				t.Fatal(err)
			}
			if n := len(p.feat.(*deviceFeatures).prepared); n != layers {
				t.Fatalf("Prepare scored %d layers of %d", n, layers)
			}
		}
		var keeps [][][]int
		for _, v := range views {
			keep, err := p.Update(v)
			if err != nil {
				t.Fatal(err)
			}
			keeps = append(keeps, keep)
		}
		return keeps
	}
	want := run(false, false)
	evicted := false
	for _, keep := range want {
		evicted = evicted || keep != nil
	}
	if !evicted {
		t.Fatal("the test parameters evict nothing; the comparison would be empty")
	}
	for _, prepare := range []bool{false, true} {
		got := run(true, prepare)
		for l := range want {
			for k := range want[l] {
				if !slices.Equal(got[l][k], want[l][k]) {
					t.Fatalf("prepare %v: layer %d head %d: device keeps %d tokens, cache %d", prepare, l, k, len(got[l][k]), len(want[l][k]))
				}
			}
		}
	}
}
