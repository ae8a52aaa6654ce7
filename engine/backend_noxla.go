//go:build noxla

package engine

import "errors"

// xlaBuilt is false in a CPU-only build (-tags noxla).
const xlaBuilt = false

func deviceFreeMemory() (int64, error) { return 0, errors.New("built without XLA") }
