//go:build !noembednamm

package defaultnamm

import "embed"

const embedded = true

// files is the directory file/: a README, and default.namm once one is shipped.
//
//go:embed file
var files embed.FS
