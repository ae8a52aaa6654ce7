package main

import (
	"fmt"
	"runtime/debug"
)

// version describes the binary from its build info: the module version,
// and the VCS commit (with "+dirty" for uncommitted changes) when the build
// recorded one.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build info)"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty, at string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		case "vcs.time":
			at = " " + s.Value
		}
	}
	out := "namm " + v
	if rev != "" {
		out += fmt.Sprintf(" commit %s%s%s", rev, dirty, at)
	}
	return out + " " + bi.GoVersion
}
