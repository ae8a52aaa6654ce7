//go:build namm_xla

package namm

// The BAM graph on XLA (a GPU through a PJRT plugin), off by default:
//
//	go test -tags namm_xla -c -o namm_xla.test ./namm
//	NAMM_XLA_PLUGIN=/path/xla_cuda_plugin.so ./namm_xla.test -test.run XLA -test.bench XLA

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/xla"

	"github.com/namm-dev/namm/internal/par"
)

func xlaBackend(tb testing.TB) backends.Backend {
	tb.Helper()
	plugin := os.Getenv("NAMM_XLA_PLUGIN")
	if plugin == "" {
		tb.Skip("NAMM_XLA_PLUGIN not set")
	}
	os.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
	os.Setenv("GOPJRT_CUDA_CHECKS", "0")
	b, err := backends.NewWithConfig("xla:" + plugin)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestScorerXLAMatchesGo: the graph on XLA scores as the host loop does.
func TestScorerXLAMatchesGo(t *testing.T) {
	sc, err := NewScorer(xlaBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, lens := range [][]int{{1}, {300, 7}, {4000, 4096, 1, 2500}} {
		p, err := ParamsFromFlat(randFlat(r, 0.3))
		if err != nil {
			t.Fatal(err)
		}
		x, _ := randInputs(r, lens)
		got, err := sc.Score(&p, x)
		if err != nil {
			t.Fatal(err)
		}
		for k := range x {
			host := Score(&p, x[k])
			for i := range host {
				if !relClose(float64(got[k][i]), float64(host[i]), 1e-4) {
					t.Fatalf("lens %v head %d token %d: xla %v, host %v", lens, k, i, got[k][i], host[i])
				}
			}
		}
	}
}

func BenchmarkScoreXLA(b *testing.B) {
	be := xlaBackend(b)
	for _, c := range [][2]int{{4096, 2}, {4096, 8}, {8192, 8}} {
		s, k := c[0], c[1]
		r := rand.New(rand.NewPCG(1, 1))
		p, _ := ParamsFromFlat(randFlat(r, 0.1))
		lens := make([]int, k)
		for i := range lens {
			lens[i] = s
		}
		x, _ := randInputs(r, lens)
		b.Run(fmt.Sprintf("host/S=%d,K=%d", s, k), func(b *testing.B) {
			for range b.N {
				par.For(k, 0, func(h int) { Score(&p, x[h]) })
			}
		})
		b.Run(fmt.Sprintf("xla/S=%d,K=%d", s, k), func(b *testing.B) { benchScorer(b, be, &p, x) })
	}
}
