package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "1706c9d0"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}}}
	if got, want := versionOf(bi), "namm v0.3.0 commit 1706c9d0+dirty 2026-01-02T03:04:05Z go1.26.8"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := versionOf(&debug.BuildInfo{GoVersion: "go1.26.8"}), "namm (devel) go1.26.8"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
