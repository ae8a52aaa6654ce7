package namm

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/policy"
)

// In-graph features. The engine keeps, next to each cached token's K and V,
// the token's NAMM state per KV head: the unnormalised EMA omega (17), the
// previous complete 16-query block of its attention (16) and the block being
// filled (16), the same state as headFeatures, and updates it inside each
// layer's graph (updateState). Attention rows never leave the graph; at a
// NAMM step only the scores do (Scorer.ScoreState) or, on the pure-Go
// backend where the buffers are shared, omega is read in place.
const (
	// StateWidth is the float32 values of NAMM state per KV head and token.
	StateWidth = Bins + 2*Hop
	stateKind  = "namm-stft/v1"
)

// StateWidth implements policy.DeviceState; 0 in host-features mode.
func (p *Policy) StateWidth() int { return p.features().stateWidth() }

// StateKind implements policy.DeviceState.
func (p *Policy) StateKind() string { return stateKind }

// StateControl implements policy.DeviceState. Control vectors:
//   - one decoded token at position q: the one-hot of q mod 16 [16], plus a
//     trailing 1 [17] when its block completes (the graph then folds it);
//   - a prefill chunk of width T (a multiple of 16, starting at a multiple of
//     16) with n real tokens, nb = T/16 blocks of which c = floor(n/16) are
//     complete: the fold weight of each block's spectrum, (1-a) a^(c-1-b)
//     for b < c and 0 after [nb]; the decay of the old omega, a^c [1]; the
//     one-hot of the block that becomes the tail [nb+1] (index 0 = the old
//     tail, b+1 = block b); the one-hot of a partial last block [nb+1], or
//     zeros.
func (p *Policy) StateControl(pass policy.Pass, nReal, width int) ([]float32, error) {
	if width == 1 {
		if nReal != 1 {
			return nil, fmt.Errorf("namm: a one-slot pass with %d tokens", nReal)
		}
		slot := pass.Start % Hop
		ctl := make([]float32, Hop, Hop+1)
		ctl[slot] = 1
		if slot == Hop-1 {
			ctl = append(ctl, 1)
		}
		return ctl, nil
	}
	if pass.Start%Hop != 0 || width%Hop != 0 {
		return nil, fmt.Errorf("namm: in-graph features need passes that start at a multiple of %d tokens and chunks a multiple of %d (pass at %d, width %d); use --chunk 128 or namm:...,features=host", Hop, Hop, pass.Start, width)
	}
	nb, c := width/Hop, nReal/Hop
	a := float64(emaA)
	ctl := make([]float32, 3*nb+3)
	for b := range c {
		ctl[b] = float32((1 - a) * math.Pow(a, float64(c-1-b)))
	}
	ctl[nb] = float32(math.Pow(a, float64(c)))
	ctl[nb+1+c] = 1
	if nReal%Hop != 0 {
		ctl[2*nb+2+c+1] = 1
	}
	return ctl, nil
}

// UpdateState implements policy.DeviceState.
func (p *Policy) UpdateState(rows, state, ctl, writeAt *Node) *Node {
	dims := rows.Shape().Dimensions
	kh, t, n := dims[0], dims[1], dims[2]
	s := n - t
	g := rows.Graph()
	if t == 1 && ctl.Shape().Size() == Hop && g.Backend().Capabilities().Operations[backends.OpTypeDynamicUpdateSlice] {
		// A decoded token that completes no block only writes one attention
		// value per slot into the open block: a column write in place, not
		// a pass over the whole state. The new token's own value goes to its
		// slot (empty, so far zero).
		col := Slice(rows, AxisRange(), AxisElem(0), AxisRange(0, s))                                    // [K, 1, S]
		self := Slice(rows, AxisRange(), AxisElem(0), AxisRange(s, s+1))                                 // [K, 1, 1]
		at := Equal(Iota(g, shapes.Make(dtypes.Int32, kh, 1, s), 2), BroadcastToDims(writeAt, kh, 1, s)) // [K, 1, S]
		col = Where(at, BroadcastToDims(self, kh, 1, s), col)
		col = Reshape(col, kh, s, 1)
		zero := ScalarZero(g, dtypes.Int32)
		slot := ArgMax(Slice(ctl, AxisRange(0, Hop)), 0, dtypes.Int32)
		return DynamicUpdateSlice(state, col, []*Node{zero, zero, AddScalar(slot, Bins+Hop)})
	}
	full := Concatenate([]*Node{state, Zeros(g, shapes.Make(dtypes.Float32, kh, t, StateWidth))}, 1)
	return model.PlaceTokens(updateState(rows, full, ctl), t, writeAt)
}

// updateState is the graph of StateControl's update; see there for ctl.
// rows [K, T, N], state [K, N, StateWidth] -> [K, N, StateWidth].
func updateState(rows, state, ctl *Node) *Node {
	dims := rows.Shape().Dimensions
	kh, t, n := dims[0], dims[1], dims[2]
	part := func(from, to int) *Node { return Slice(state, AxisRange(), AxisRange(), AxisRange(from, to)) }
	omega, prev, cur := part(0, Bins), part(Bins, Bins+Hop), part(Bins+Hop, StateWidth)
	if t == 1 {
		slot := BroadcastToDims(Reshape(Slice(ctl, AxisRange(0, Hop)), 1, 1, Hop), kh, n, Hop)
		row := BroadcastToDims(Reshape(rows, kh, n, 1), kh, n, Hop)
		cur = Add(cur, Mul(row, slot))
		if ctl.Shape().Size() == Hop {
			return Concatenate([]*Node{omega, prev, cur}, -1)
		}
		spec := spectrum(Concatenate([]*Node{prev, cur}, -1)) // [K, N, 17]
		omega = Add(MulScalar(omega, float64(emaA)), MulScalar(spec, float64(emaB)))
		return Concatenate([]*Node{omega, cur, ZerosLike(cur)}, -1)
	}
	// Frame b of the chunk is [block b-1 ++ block b] (block -1: the old
	// tail): the blocks [K, nb+1, 16, N] with the tail first, then each
	// frame as two consecutive blocks, keys last as the rows are laid out.
	nb := t / Hop
	rb := Reshape(rows, kh, nb, Hop, n)                                         // [K, nb, 16, N]
	tail := InsertAxes(TransposeAllAxes(prev, 0, 2, 1), 1)                      // [K, 1, 16, N]
	blocks := Concatenate([]*Node{tail, rb}, 1)                                 // [K, nb+1, 16, N]
	frames := Concatenate([]*Node{Slice(blocks, AxisRange(), AxisRange(0, nb)), // [K, nb, 32, N]
		Slice(blocks, AxisRange(), AxisRange(1, nb+1))}, 2)
	ri := windowedDFT(frames, 2) // [K, nb, 34, N]
	re := Slice(ri, AxisRange(), AxisRange(), AxisRange(0, Bins))
	im := Slice(ri, AxisRange(), AxisRange(), AxisRange(Bins, 2*Bins))
	mag := Sqrt(Add(Square(re), Square(im))) // [K, nb, 17, N]
	foldW := Slice(ctl, AxisRange(0, nb))
	decay := Reshape(Slice(ctl, AxisRange(nb, nb+1)))
	prevSel := Slice(ctl, AxisRange(nb+1, 2*nb+2)) // [old tail, block 0, ...]
	curSel := Slice(ctl, AxisRange(2*nb+2, 3*nb+3))
	pick := func(sel *Node) *Node { // [K, N, 16]: sel[0] x old tail + sum_b sel[b+1] x block b
		blocks := TransposeAllAxes(model.WeightedSum(rb, Slice(sel, AxisRange(1, nb+1)), 1), 0, 2, 1)
		return Add(blocks, Mul(prev, Reshape(Slice(sel, AxisRange(0, 1)))))
	}
	fold := TransposeAllAxes(model.WeightedSum(mag, foldW, 1), 0, 2, 1) // [K, N, 17]
	omega = Add(Mul(omega, decay), fold)
	return Concatenate([]*Node{omega, pick(prevSel), pick(curSel)}, -1)
}

// windowedDFT contracts the frame axis (32 values) of frames with the
// Hann-windowed DFT table: the 17 bins' real parts, then their imaginary
// parts, in place of that axis. It multiplies and sums in float32, not as a
// matrix product (as model.WeightedSum does): XLA runs float32 products on GPUs in TF32 (10-bit
// mantissas), which would put the features ~1e-3 away from the reference's
// float32 STFT; the contraction is only 32 long, so the sum costs memory
// traffic, not arithmetic, either way.
func windowedDFT(frames *Node, axis int) *Node {
	g := frames.Graph()
	dims := frames.Shape().Dimensions
	out := append(append(append([]int(nil), dims[:axis+1]...), 2*Bins), dims[axis+1:]...)
	x := BroadcastToDims(InsertAxes(frames, axis+1), out...)
	tshape := make([]int, len(out))
	for i := range tshape {
		tshape[i] = 1
	}
	tshape[axis], tshape[axis+1] = NFFT, 2*Bins
	table := BroadcastToDims(Reshape(Const(g, dftTable()), tshape...), out...)
	return ReduceSum(Mul(x, table), axis)
}

// dftTable is the [32, 34] Hann-windowed DFT table: frame . table gives the
// real parts of the 17 bins, then their imaginary parts.
func dftTable() [][]float32 {
	table := make([][]float32, NFFT)
	for k := range NFFT {
		table[k] = make([]float32, 2*Bins)
		for f := range Bins {
			a := 2 * math.Pi * float64(f*k) / NFFT
			table[k][f] = hann[k] * float32(math.Cos(a))
			table[k][Bins+f] = hann[k] * float32(math.Sin(a))
		}
	}
	return table
}

// spectrum is frameMagnitudes on the last axis of frames [..., 32] -> [..., 17].
func spectrum(frames *Node) *Node {
	last := frames.Rank() - 1
	ri := windowedDFT(frames, last) // [..., 34]
	re := Slice(ri, AxisRange().Spacer(), AxisRange(0, Bins))
	im := Slice(ri, AxisRange().Spacer(), AxisRange(Bins, 2*Bins))
	return Sqrt(Add(Square(re), Square(im)))
}

// stateOmegas reads, per head, the omega of each token listed in slots from
// a [K, C, StateWidth] state tensor (in place on the pure-Go backend).
func stateOmegas(state *tensors.Tensor, slots [][]int) ([][]float32, error) {
	dims := state.Shape().Dimensions
	if state.DType() != dtypes.Float32 || len(dims) != 3 || dims[2] != StateWidth || dims[0] != len(slots) {
		return nil, fmt.Errorf("namm: device state has shape %s, want [%d, C, %d] float32", state.Shape(), len(slots), StateWidth)
	}
	c := dims[1]
	out := make([][]float32, len(slots))
	err := tensors.ConstFlatData(state, func(flat []float32) {
		for k, sl := range slots {
			om := make([]float32, len(sl)*Bins)
			for i, slot := range sl {
				base := (k*c + slot) * StateWidth
				copy(om[i*Bins:(i+1)*Bins], flat[base:base+Bins])
			}
			out[k] = om
		}
	})
	return out, err
}
