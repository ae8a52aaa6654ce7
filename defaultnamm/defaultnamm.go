// Package defaultnamm ships the project's evolved NAMM inside the binary, so
// that "--memory namm" (no path) works on a fresh machine, as defaultmodel
// ships model A. Importing it (cmd/namm does, blank) sets namm.DefaultFile.
//
// The NAMM is the file file/default.namm, embedded when it exists at build
// time. Until an evolved NAMM is committed there the directory holds only a
// README, nothing is shipped, and "--memory namm" fails with namm's "no
// default NAMM" error. go:embed cannot name an optional file, so the whole
// directory is embedded and the NAMM is looked up in it.
package defaultnamm

import "github.com/namm-dev/namm/namm"

// FileName is the default NAMM's path inside the package directory.
const FileName = "file/default.namm"

func init() {
	if b := embeddedBytes(); len(b) > 0 {
		namm.DefaultFile = b
	}
}

// Shipped reports whether this binary carries a default NAMM.
func Shipped() bool { return len(embeddedBytes()) > 0 }

// embeddedBytes returns the embedded default NAMM, nil when there is none
// (not committed yet, or a build with -tags noembednamm).
func embeddedBytes() []byte {
	if !embedded {
		return nil
	}
	b, err := files.ReadFile(FileName)
	if err != nil {
		return nil
	}
	return b
}
