package policy

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestSelectTopKHandCases(t *testing.T) {
	tests := []struct {
		name   string
		scores []float64
		k      int
		p      Protect
		want   []int
	}{
		{"top scores plus newest", []float64{5, 1, 3, 0, 2}, 3, Protect{}, []int{0, 2, 4}},
		{"ties evict the older token first", make([]float64, 5), 2, Protect{}, []int{3, 4}},
		{"sinks and recent window", make([]float64, 10), 4, Protect{Sinks: 2, Recent: 2}, []int{0, 1, 8, 9}},
		{"protection beyond k shrinks recent, then sinks", make([]float64, 10), 3, Protect{Sinks: 4, Recent: 4}, []int{7, 8, 9}},
		{"sinks cut to fit", make([]float64, 10), 3, Protect{Sinks: 4, Recent: 1}, []int{0, 1, 9}},
		{"newest kept even with the lowest score", []float64{3, 2, 1, -9}, 2, Protect{}, []int{0, 3}},
		{"k <= 0 still keeps the newest", []float64{3, 2, 1}, 0, Protect{}, []int{2}},
		{"under the limit keeps all", []float64{1, 2}, 2, Protect{}, nil},
	}
	for _, tc := range tests {
		got := SelectTopK(tc.scores, tc.k, tc.p)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: SelectTopK(%v, %d, %+v) = %v, want %v", tc.name, tc.scores, tc.k, tc.p, got, tc.want)
		}
	}
}

// TestSelectTopKProperties checks random cases against the definition: the
// protected tokens are kept, exactly k are kept, and no evicted unprotected
// token beats a kept unprotected one (ties go to the newer token).
func TestSelectTopKProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		n := 1 + rng.IntN(40)
		k := 1 + rng.IntN(n+3)
		p := Protect{Sinks: rng.IntN(5), Recent: rng.IntN(6)}
		scores := make([]float64, n)
		for i := range scores {
			scores[i] = float64(rng.IntN(6)) // many ties
		}
		keep := SelectTopK(scores, k, p)
		if n <= k {
			if keep != nil {
				t.Fatalf("trial %d: n=%d <= k=%d but keep=%v", trial, n, k, keep)
			}
			continue
		}
		if err := checkKeep([][]int{keep}, []int{n}); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if len(keep) != k {
			t.Fatalf("trial %d: kept %d, want %d", trial, len(keep), k)
		}
		kept := make([]bool, n)
		for _, i := range keep {
			kept[i] = true
		}
		recent := min(max(p.Recent, 1), k)
		sinks := min(p.Sinks, k-recent)
		prot := func(i int) bool { return i < sinks || i >= n-recent }
		for i := range n {
			if prot(i) && !kept[i] {
				t.Fatalf("trial %d: protected %d evicted (p=%+v k=%d n=%d keep=%v)", trial, i, p, k, n, keep)
			}
		}
		for e := range n {
			if kept[e] || prot(e) {
				continue
			}
			for j := range n {
				if !kept[j] || prot(j) {
					continue
				}
				if scores[e] > scores[j] || (scores[e] == scores[j] && e > j) {
					t.Fatalf("trial %d: evicted %d (score %g) beats kept %d (score %g)", trial, e, scores[e], j, scores[j])
				}
			}
		}
	}
}

func TestCompact(t *testing.T) {
	state := [][]float32{{10, 11, 12, 13}, {20, 21, 22}}
	CompactHeads(state, [][]int{{0, 3}, nil})
	want := [][]float32{{10, 13}, {20, 21, 22}}
	if !reflect.DeepEqual(state, want) {
		t.Fatalf("CompactHeads = %v, want %v", state, want)
	}
	if got := Compact([]int{1, 2, 3}, nil); len(got) != 3 {
		t.Fatalf("Compact with nil keep changed the slice: %v", got)
	}
}

func TestCheckKeepRejects(t *testing.T) {
	bad := []struct {
		keep [][]int
		lens []int
	}{
		{[][]int{{0, 2}}, []int{2}},      // out of range
		{[][]int{{1, 0, 2}}, []int{3}},   // not ascending
		{[][]int{{0, 1}}, []int{3}},      // newest evicted
		{[][]int{{}}, []int{3}},          // nothing kept
		{[][]int{{0, 1}, {0}}, []int{2}}, // head count
		{[][]int{{0, 0, 2}}, []int{3}},   // duplicate
	}
	for _, b := range bad {
		if err := checkKeep(b.keep, b.lens); err == nil {
			t.Errorf("checkKeep(%v, %v) accepted a bad answer", b.keep, b.lens)
		}
	}
	if err := checkKeep([][]int{{0, 2}, nil}, []int{3, 5}); err != nil {
		t.Errorf("CheckKeep rejected a good answer: %v", err)
	}
}

func TestMaxPool(t *testing.T) {
	got := maxPool([]float64{0, 0, 5, 0, 0, 0, 1}, 3)
	want := []float64{0, 5, 5, 5, 0, 1, 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("maxPool = %v, want %v", got, want)
	}
	if got := maxPool([]float64{1, 4, 2}, 7); !reflect.DeepEqual(got, []float64{4, 4, 4}) {
		t.Fatalf("maxPool wide kernel = %v", got)
	}
}
