//go:build noembednamm

package defaultnamm

import "embed"

// Builds with -tags noembednamm leave the default NAMM out ("--memory namm"
// then needs namm:PATH).
const embedded = false

var files embed.FS
