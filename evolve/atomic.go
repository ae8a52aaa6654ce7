package evolve

import (
	"github.com/namm-dev/namm/internal/atomicfile"
)

// writeFileAtomic writes data to path so that a run killed at any moment
// leaves the old content or the new, never a mix.
func writeFileAtomic(path string, data []byte) error { return atomicfile.WriteFile(path, data) }
