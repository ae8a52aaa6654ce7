package train

import (
	"errors"
	"sync/atomic"
	"testing"
)

// TestParallel: every item runs once and progress counts up to n; an error
// is returned (the first one) and stops the items not yet started.
func TestParallel(t *testing.T) {
	const n = 200
	var runs [n]atomic.Int32
	last := 0
	err := parallel(n, 4, func(done, total int) {
		if done != last+1 || total != n {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
	}, func(i int) error { runs[i].Add(1); return nil })
	if err != nil || last != n {
		t.Fatalf("err %v, progress reached %d of %d", err, last, n)
	}
	for i := range runs {
		if c := runs[i].Load(); c != 1 {
			t.Fatalf("item %d ran %d times", i, c)
		}
	}
	bad := errors.New("item 3")
	var ran atomic.Int32
	err = parallel(n, 1, nil, func(i int) error {
		ran.Add(1)
		if i == 3 {
			return bad
		}
		return nil
	})
	if !errors.Is(err, bad) || ran.Load() != 4 {
		t.Fatalf("err %v after %d items, want %v after 4 (one worker stops at the error)", err, ran.Load(), bad)
	}
}
