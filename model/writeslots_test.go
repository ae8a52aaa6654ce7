package model

import (
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestWriteSlotsWithoutDynamicUpdateSlice: on the pure-Go backend, which
// has no DynamicUpdateSlice, WriteSlots places the update at its index
// along each axis of a [2, 5, 3] buffer and leaves every other value.
func TestWriteSlotsWithoutDynamicUpdateSlice(t *testing.T) {
	be, err := backends.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	if be.Capabilities().Operations[backends.OpTypeDynamicUpdateSlice] {
		t.Skip("the backend has DynamicUpdateSlice: the fallback is not used")
	}
	dims := []int{2, 5, 3}
	buf := make([]float32, 2*5*3)
	for i := range buf {
		buf[i] = float32(i)
	}
	for axis, at := range []int{1, 2, 1} {
		udims := append([]int(nil), dims...)
		udims[axis] = min(2, dims[axis]-at)
		n := udims[0] * udims[1] * udims[2]
		upd := make([]float32, n)
		for i := range upd {
			upd[i] = -1 - float32(i)
		}
		ex, err := NewExec(be, func(b, u, a *Node) *Node { return WriteSlots(b, u, a, axis) })
		if err != nil {
			t.Fatal(err)
		}
		out, err := ex.Exec(tensors.FromFlatDataAndDimensions(buf, dims...), tensors.FromFlatDataAndDimensions(upd, udims...), int32(at))
		if err != nil {
			t.Fatal(err)
		}
		got := tensors.MustCopyFlatData[float32](out[0])
		for i := range dims[0] {
			for j := range dims[1] {
				for k := range dims[2] {
					idx := [3]int{i, j, k}
					want := buf[(i*dims[1]+j)*dims[2]+k]
					if r := idx[axis] - at; r >= 0 && r < udims[axis] {
						idx[axis] = r
						want = upd[(idx[0]*udims[1]+idx[1])*udims[2]+idx[2]]
					}
					if g := got[(i*dims[1]+j)*dims[2]+k]; g != want {
						t.Fatalf("axis %d at %d: [%d %d %d] = %v, want %v", axis, at, i, j, k, g, want)
					}
				}
			}
		}
	}
}
