package kvcache

import (
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func backend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := backends.NewWithConfig("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// value is the key or value entry d of the token at position p in head k:
// distinct for every (k, p, d), so a misplaced row shows.
func value(k, p, d int) float32 { return float32(k*10000 + p*10 + d) }

// fill appends tokens at positions from..to-1 to every head, with K and V
// rows from value (V's entry d offset by 0.5).
func fill(t *testing.T, l *Layer, s Spec, from, to int) {
	t.Helper()
	n := to - from
	nk := make([]float32, s.NumKVHeads*n*s.HeadDim)
	nv := make([]float32, s.NumKVHeads*s.HeadDim*n)
	qpos := make([]int32, n)
	for k := range s.NumKVHeads {
		for i := range n {
			qpos[i] = int32(from + i)
			for d := range s.HeadDim {
				nk[(k*n+i)*s.HeadDim+d] = value(k, from+i, d)
				nv[(k*s.HeadDim+d)*n+i] = value(k, from+i, d) + 0.5
			}
		}
	}
	if err := l.AppendHost(s, tensors.FromFlatDataAndDimensions(nk, s.NumKVHeads, n, s.HeadDim),
		tensors.FromFlatDataAndDimensions(nv, s.NumKVHeads, s.HeadDim, n), qpos); err != nil {
		t.Fatal(err)
	}
	l.AppendIndex(qpos)
}

// check compares every held token's K and V rows and the positions buffer
// with what value and the index say.
func check(t *testing.T, l *Layer, s Spec) {
	t.Helper()
	kf := tensors.MustCopyFlatData[float32](l.K)
	vf := tensors.MustCopyFlatData[float32](l.V)
	pf := tensors.MustCopyFlatData[int32](l.Pos)
	c, hd := l.Capacity, s.HeadDim
	want := make([]int32, s.NumKVHeads*c)
	FillPositions(want, l.Heads, c)
	if !slices.Equal(pf, want) {
		t.Fatalf("positions buffer %v, index says %v", pf, want)
	}
	for k, h := range l.Heads {
		for i, slot := range h.Slot {
			p := int(h.Pos[i])
			for d := range hd {
				if got := kf[(k*c+slot)*hd+d]; got != value(k, p, d) {
					t.Fatalf("head %d position %d slot %d: K[%d] = %v, want %v", k, p, slot, d, got, value(k, p, d))
				}
				if got := vf[(k*hd+d)*c+slot]; got != value(k, p, d)+0.5 {
					t.Fatalf("head %d position %d slot %d: V[%d] = %v, want %v", k, p, slot, d, got, value(k, p, d)+0.5)
				}
			}
		}
	}
}

// TestAppendHolesCompact: appended tokens land at Used; holes drop tokens
// from the index and the positions buffer without moving the others; a
// compaction with heads keeping different counts moves each head's kept
// rows to the front, in order, into a smaller buffer.
func TestAppendHolesCompact(t *testing.T) {
	b := backend(t)
	s := Spec{NumLayers: 1, NumKVHeads: 2, HeadDim: 4, DType: dtypes.Float32}
	l, err := NewLayer(b, true, s, 16)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, &l, s, 0, 5)
	fill(t, &l, s, 5, 9)
	if l.Used != 9 || l.Tokens() != 9 || l.HasHoles() {
		t.Fatalf("used %d tokens %d holes %v, want 9, 9, false", l.Used, l.Tokens(), l.HasHoles())
	}
	check(t, &l, s)

	keep := [][]int{{0, 2, 4, 8}, {1, 3, 5, 6, 7, 8}}
	slots, removed, err := l.KeptSlots(keep)
	if err != nil || !removed || !slices.Equal(slots[0], []int{0, 2, 4, 8}) {
		t.Fatalf("KeptSlots: slots %v, removed %v, error %v", slots, removed, err)
	}
	l.PunchHoles(keep)
	tensors.MustMutableFlatData(l.Pos, func(p []int32) { FillPositions(p, l.Heads, l.Capacity) })
	if !l.HasHoles() || l.Used != 9 || !slices.Equal(l.Heads[0].Slot, []int{0, 2, 4, 8}) {
		t.Fatalf("after holes: used %d, head 0 slots %v", l.Used, l.Heads[0].Slot)
	}
	check(t, &l, s)

	plan := l.Compact(nil) // every held token
	if !slices.Equal(plan.Slots[1], []int{1, 3, 5, 6, 7, 8}) || plan.Used != 6 {
		t.Fatalf("plan %+v", plan)
	}
	if err := l.GatherHost(b, s, plan.Slots, 8); err != nil {
		t.Fatal(err)
	}
	l.Reindex(plan)
	if l.Capacity != 8 || l.Used != 6 || !slices.Equal(l.Heads[0].Pos, []int32{0, 2, 4, 8}) || !slices.Equal(l.Heads[1].Slot, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("after compaction: capacity %d used %d heads %+v", l.Capacity, l.Used, l.Heads)
	}
	check(t, &l, s)
	fill(t, &l, s, 9, 11) // both heads' next tokens at slot Used
	check(t, &l, s)
}

// TestKeptSlotsRefusesBadAnswers: a policy's answer with the wrong head
// count, unordered or out-of-range indices, or without the newest token is
// refused with the reason.
func TestKeptSlotsRefusesBadAnswers(t *testing.T) {
	b := backend(t)
	s := Spec{NumLayers: 1, NumKVHeads: 2, HeadDim: 2, DType: dtypes.Float32}
	l, err := NewLayer(b, true, s, 8)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, &l, s, 0, 4)
	for _, c := range []struct {
		keep [][]int
		want string
	}{
		{[][]int{{3}}, "returned 1 heads"},
		{[][]int{{2, 1, 3}, {3}}, "ascending"},
		{[][]int{{0, 7}, {3}}, "ascending and in [0, 4)"},
		{[][]int{{0, 1}, {3}}, "newest token must be kept"},
		{[][]int{{3}, {}}, "head 1: the newest"},
	} {
		if _, _, err := l.KeptSlots(c.keep); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("keep %v: error %v, want one with %q", c.keep, err, c.want)
		}
	}
	if _, removed, err := l.KeptSlots([][]int{{0, 1, 2, 3}, {0, 1, 2, 3}}); err != nil || removed {
		t.Errorf("keeping everything: removed %v, error %v", removed, err)
	}
}

// TestBytes: a cache's bytes are every layer's capacity times K, V and a
// position per KV head: 2 layers x 8 slots x 2 heads x (2 x 4 x 4 + 4).
func TestBytes(t *testing.T) {
	b := backend(t)
	s := Spec{NumLayers: 2, NumKVHeads: 2, HeadDim: 4, DType: dtypes.Float32}
	c := Cache{Spec: s}
	for range 2 {
		l, err := NewLayer(b, true, s, 8)
		if err != nil {
			t.Fatal(err)
		}
		c.Layers = append(c.Layers, l)
	}
	if got, want := c.Bytes(), int64(2*8*2*(2*4*4+4)); got != want {
		t.Errorf("Bytes() = %d, want %d", got, want)
	}
}
