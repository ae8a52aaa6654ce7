package engine

import (
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// ExecOverhead measures the fixed cost of one graph execution on the
// backend: a trivial graph over nArgs small device-resident inputs, called
// calls times. It is a diagnostic for `namm bench --exec-overhead`.
func (e *Engine) ExecOverhead(nArgs, calls int) (time.Duration, error) {
	ex, err := graph.NewExecAny(e.Backend, func(in []*graph.Node) []*graph.Node {
		sum := in[0]
		for _, x := range in[1:] {
			sum = graph.Add(sum, x)
		}
		return []*graph.Node{sum}
	})
	if err != nil {
		return 0, err
	}
	args := make([]any, nArgs)
	for i := range args {
		t := tensors.FromFlatDataAndDimensions(make([]float32, 64), 64)
		if err := t.MaterializeOnDevice(e.Backend, false, 0); err != nil {
			return 0, err
		}
		args[i] = t
	}
	if _, err := ex.Exec(args...); err != nil {
		return 0, err
	}
	start := time.Now()
	var last *tensors.Tensor
	for range calls {
		out, err := ex.Exec(args...)
		if err != nil {
			return 0, err
		}
		last = out[0]
	}
	tensors.MustCopyFlatData[float32](last) // wait for the device
	return time.Since(start) / time.Duration(calls), nil
}
