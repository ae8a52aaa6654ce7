// Package provenance records what produced a result: the model (by content),
// the compute settings and the build of namm, so that results.json and a
// run's metadata say how to reproduce them.
package provenance

import (
	"runtime/debug"

	"github.com/namm-dev/namm/internal/modelid"
)

// Build is the namm build that ran.
type Build struct {
	// Version is the module version ("(devel)" for a build from a checkout).
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from ("" when the
	// build carries none, e.g. go test), Modified whether the tree had
	// uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

// ReadBuild reads the build's module version and VCS stamp.
func ReadBuild() Build {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{Version: "unknown"}
	}
	b := Build{Version: info.Main.Version, Go: info.GoVersion}
	if b.Version == "" {
		b.Version = "unknown"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Run is what a result depends on besides its task and policy.
type Run struct {
	Model   modelid.ID `json:"model"`
	Backend string     `json:"backend"` // as given: go, xla:PLUGIN
	DType   string     `json:"dtype"`   // the compute dtype in effect (float32, bfloat16)
	Chunk   int        `json:"chunk"`   // prefill chunk in tokens
	Namm    Build      `json:"namm"`
}
