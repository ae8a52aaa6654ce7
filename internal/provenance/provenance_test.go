package provenance

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestReadBuild compares with the build information Go records, read
// independently.
func TestReadBuild(t *testing.T) {
	b := ReadBuild()
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build information")
	}
	if b.Go != runtime.Version() || b.Go != info.GoVersion {
		t.Errorf("Go %q, want %q", b.Go, runtime.Version())
	}
	want := ""
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			want = s.Value
		}
	}
	if b.Commit != want || b.Version == "" {
		t.Errorf("build %+v, want commit %q and a version", b, want)
	}
}
