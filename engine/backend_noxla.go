//go:build noxla

package engine

// xlaBuilt is false in a CPU-only build (-tags noxla).
const xlaBuilt = false
