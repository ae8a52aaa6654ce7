package engine

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/policy"
)

// TestAliasOutputOnlyOnXLA: on the pure-Go backend aliasOutput finds no
// StableHLO value, leaves the graph alone and reports false (the XLA side,
// input_output_alias in the compiled program and unchanged results, is
// checked on the GPU: TestFusedPassMatchesLayersXLA, and the copy counts of
// scripts/gpu/hlo.sh).
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

// TestPrefixQuarters: the attended prefix covers the occupied slots and the
// pass's tokens, in the fewest quarters of the capacity, and small or odd
// capacities are attended whole.
func TestPrefixQuarters(t *testing.T) {
	for _, c := range []struct{ capacity, used, width, want int }{
		{3072, 0, 128, 1},     // 128 <= 768
		{3072, 640, 128, 1},   // 768 <= 768
		{3072, 641, 128, 2},   // 769 > 768
		{3072, 2900, 128, 4},  // 3028 > 2304
		{3072, 2944, 128, 4},  // full
		{10240, 8192, 1, 4},   // 8193 > 7680
		{10240, 7679, 1, 3},   // 7680 <= 7680
		{1792, 0, 128, 4},     // under 2,048 slots: whole
		{2048 + 2, 0, 128, 4}, // not a multiple of 4: whole
	} {
		got := prefixQuarters(c.capacity, c.used, c.width)
		if got != c.want {
			t.Errorf("prefixQuarters(%d, %d, %d) = %d, want %d", c.capacity, c.used, c.width, got, c.want)
		}
		if got < 4 && c.capacity*got/4 < c.used+c.width {
			t.Errorf("prefixQuarters(%d, %d, %d) = %d does not cover the pass", c.capacity, c.used, c.width, got)
		}
	}
}

// TestPlanPasses: the passes compiled ahead of a 1,000-token prefill in a
// 2,048-slot cache (128-token chunks) are, counted by hand from
// prefixQuarters: chunks 0-3 attend to one quarter, chunks 4-6 to two,
// the last chunk (with logits) to two; without prefix graphs, every pass
// attends to the whole. The decoded token's pass is not compiled ahead.
// With a policy that evicts, the last chunk may attend to fewer quarters.
func TestPlanPasses(t *testing.T) {
	type want struct {
		width, quarters int
		logits          bool
	}
	for _, c := range []struct {
		prefix bool
		policy string
		want   []want
	}{
		{true, "full", []want{{128, 1, false}, {128, 2, false}, {128, 2, true}}},
		{false, "full", []want{{128, 4, false}, {128, 4, true}}},
		// A policy that evicts may leave the last chunk one quarter.
		{true, "streaming", []want{{128, 1, false}, {128, 2, false}, {128, 2, true}, {128, 1, true}}},
	} {
		e, err := Load(fixtureDir("tiny-llama"), Options{Backend: "go", PrefixGraphs: c.prefix})
		if err != nil {
			t.Fatal(err)
		}
		var budget policy.Budget
		if c.policy != "full" {
			budget.Tokens = 300
		}
		p, err := policy.New(c.policy, budget)
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.NewSession(p)
		if err != nil {
			t.Fatal(err)
		}
		plans, err := s.planPasses(1000, 2048)
		if err != nil {
			t.Fatal(err)
		}
		var got []want
		for _, p := range plans {
			got = append(got, want{p.width, p.quarters, p.logits})
		}
		if len(got) != len(c.want) {
			t.Fatalf("prefix graphs %v: planned %v, want %v", c.prefix, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("prefix graphs %v: planned %v, want %v", c.prefix, got, c.want)
				break
			}
		}
		if last := plans[len(plans)-1]; !last.pass.LastPrefill || last.nReal != 1000-7*128 {
			t.Errorf("prefix graphs %v: the last chunk is planned as %+v", c.prefix, last.pass)
		}
	}
}

// TestUnstackStats: a statistic stacked over the layers ([L, K, N]) comes
// back as each layer's [K, N] tensor, in order, for every statistic asked.
func TestUnstackStats(t *testing.T) {
	const layers, kh, n = 3, 2, 5
	var stacked []*tensors.Tensor
	for s := range 2 {
		flat := make([]float32, layers*kh*n)
		for i := range flat {
			flat[i] = float32(100*s + i)
		}
		stacked = append(stacked, tensors.FromFlatDataAndDimensions(flat, layers, kh, n))
	}
	got, err := unstackStats(stacked, layers)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != layers {
		t.Fatalf("%d layers, want %d", len(got), layers)
	}
	for l := range layers {
		if len(got[l]) != 2 {
			t.Fatalf("layer %d: %d statistics, want 2", l, len(got[l]))
		}
		for s, st := range got[l] {
			if d := st.Shape().Dimensions; len(d) != 2 || d[0] != kh || d[1] != n {
				t.Fatalf("layer %d stat %d: shape %v", l, s, d)
			}
			for i, v := range tensors.MustCopyFlatData[float32](st) {
				if want := float32(100*s + l*kh*n + i); v != want {
					t.Fatalf("layer %d stat %d value %d: %v, want %v", l, s, i, v, want)
				}
			}
		}
	}
}
