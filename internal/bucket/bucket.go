// Package bucket rounds sizes up to a few values, so that compiled backends
// (XLA) build only a handful of graph shapes for caches and score matrices.
package bucket

// Round rounds n up: to 256 at least, to multiples of 256 up to 2,048, then
// to steps of a quarter of the power of two below n (at most 25% padding,
// about four shapes per doubling).
func Round(n int) int {
	if n <= 256 {
		return 256
	}
	if n <= 2048 {
		return (n + 255) / 256 * 256
	}
	p := 1
	for p*2 < n {
		p *= 2
	}
	step := p / 4
	return (n + step - 1) / step * step
}
