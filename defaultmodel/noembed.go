//go:build noembedmodel

package defaultmodel

import "embed"

// Builds for the GPU machine leave the model out (-tags noembedmodel): the
// binary must travel in a small working tree, and it is given --model there.
const embedded = false

var files embed.FS
