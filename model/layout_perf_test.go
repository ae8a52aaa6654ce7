package model

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// BenchmarkLayouts times x W^T in candidate weight layouts on the pure-Go backend.
func BenchmarkLayouts(b *testing.B) {
	for _, spec := range benchBackends {
		be, err := backends.NewWithConfig(spec)
		if err != nil {
			b.Fatal(err)
		}
		for _, sz := range benchSizes {
			t, d, e := sz[0], sz[1], sz[2]
			x := tensors.FromFlatDataAndDimensions(randomFloats(t*d, 1, 1), t, d)
			for _, lay := range benchLayouts {
				var w *tensors.Tensor
				var fn func(x, w *Node) *Node
				n := 1
				fmt.Sscanf(lay[len(lay)-1:], "%d", &n)
				switch {
				case lay == "plain":
					w = tensors.FromFlatDataAndDimensions(randomFloats(e*d, 1, 2), e, d)
					fn = func(x, w *Node) *Node { return Einsum("td,ed->te", x, w) }
				case lay[0] == 'g':
					if e%n != 0 {
						continue
					}
					w = tensors.FromFlatDataAndDimensions(randomFloats(e*d, 1, 2), n, e/n, d)
					fn = func(x, w *Node) *Node {
						xb := BroadcastToDims(InsertAxes(x, 0), n, t, d)
						y := Einsum("ntd,ned->nte", xb, w)
						return Reshape(TransposeAllAxes(y, 1, 0, 2), t, e)
					}
				default:
					if e%n != 0 || d%64 != 0 {
						continue
					}
					c := d / 64
					w = tensors.FromFlatDataAndDimensions(randomFloats(e*d, 1, 2), c, n, e/n, 64)
					fn = func(x, w *Node) *Node {
						xs := TransposeAllAxes(Reshape(x, t, c, 64), 1, 0, 2) // [c, t, 64]
						xb := BroadcastToDims(InsertAxes(xs, 1), c, n, t, 64)
						y := Einsum("cntk,cnok->cnto", xb, w)
						y = ReduceSum(y, 0) // [n, t, o]
						return Reshape(TransposeAllAxes(y, 1, 0, 2), t, e)
					}
				}
				ex, err := NewExec(be, fn)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(fmt.Sprintf("%s/%dx%dx%d/%s", spec, t, d, e, lay), func(b *testing.B) {
					c0 := cpuNanos()
					for b.Loop() {
						out := ex.MustExec(x, w)
						out[0].FinalizeAll()
					}
					b.ReportMetric(float64(cpuNanos()-c0)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
	_ = dtypes.Float32
}

// cpuNanos is the process's user+system CPU time: on a shared machine it is
// steadier than wall time.
func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

var (
	benchSizes    = [][3]int{{1, 256, 32000}, {1, 256, 688}, {1, 688, 256}, {128, 256, 688}, {128, 688, 256}}
	benchLayouts  = []string{"plain", "g2", "g4", "ks1", "ks2", "ks4"}
	benchBackends = []string{"go:ops_sequential"}
)
