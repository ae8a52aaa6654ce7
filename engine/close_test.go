package engine

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func TestCloseFreesBuffers(t *testing.T) {
	e, err := Load("../testdata/models/tiny-llama", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prefill([]int{1, 15043, 29892, 3186}); err != nil {
		t.Fatal(err)
	}
	var held []*tensors.Tensor
	for _, l := range s.cache.Layers {
		held = append(held, l.K, l.V, l.Pos)
	}
	held = append(held, s.hidden)
	for i, tt := range held {
		if !tt.Ok() {
			t.Fatalf("buffer %d not valid before Close", i)
		}
	}
	s.Close()
	for i, tt := range held {
		if tt.Ok() {
			t.Errorf("buffer %d still valid after Close", i)
		}
	}
	if s.CacheBytes() != 0 {
		t.Errorf("CacheBytes %d after Close", s.CacheBytes())
	}
}
