package main

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorLineNamesNammOnce(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("namm: safetensors: open x.namm: %w", errors.New("no such file")), "namm: safetensors: open x.namm: no such file"},
		{errors.New("give --tasks"), "namm: give --tasks"},
	} {
		if got := errorLine(c.err); got != c.want {
			t.Errorf("errorLine(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
