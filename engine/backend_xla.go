//go:build !noxla

package engine

// The XLA backend runs graphs on a GPU through a PJRT plugin given by path
// (--backend xla:PATH); build with -tags noxla to leave it out.
import _ "github.com/gomlx/gomlx/backends/xla"

// xlaBuilt reports whether this binary has the XLA backend.
const xlaBuilt = true
