package bucket

import "testing"

func TestRound(t *testing.T) {
	for _, c := range [][2]int{{1, 256}, {256, 256}, {257, 512}, {2048, 2048}, {2049, 2560}, {4096, 4096}, {4097, 5120}, {8192, 8192}} {
		if got := Round(c[0]); got != c[1] {
			t.Errorf("Round(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}
