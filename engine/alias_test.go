package engine

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// TestAliasOutputOnlyOnXLA: on the pure-Go backend aliasOutput finds no
// StableHLO value, leaves the graph alone and reports false (the XLA side,
// input_output_alias in the compiled program and unchanged results, is
// checked on the GPU: TestFusedPassMatchesLayersXLA and
// docs/data/gpu-h200-2026-11-26-s4/call3_copies.txt).
func TestAliasOutputOnlyOnXLA(t *testing.T) {
	b, err := OpenBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	var marked bool
	ex, err := graph.NewExec(b, func(x *graph.Node) *graph.Node {
		marked = aliasOutput(x, 0)
		return graph.AddScalar(x, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ex.Exec(float32(2))
	if err != nil {
		t.Fatal(err)
	}
	if marked {
		t.Fatal("aliasOutput marked a parameter on the pure-Go backend")
	}
	if got := out[0].Value().(float32); got != 3 {
		t.Fatalf("graph result %v, want 3", got)
	}
	// A node that is not a parameter of an XLA graph: no panic, false.
	g := graph.NewGraph(b, "alias")
	if aliasOutput(graph.Parameter(g, "p", shapes.Make(dtypes.Float32)), 0) {
		t.Fatal("marked")
	}
}
