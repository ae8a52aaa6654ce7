package policy

// Bounded is an optional interface of policies that hold every head of a
// layer at or under a token limit once a pass's Update is done. The engine
// may use it to size buffers; the tests use it to check budgets.
type Bounded interface {
	// BoundAfter returns the limit for a head of layer after pass p, and
	// false where the policy promises none for that pass (SnapKV during
	// decoding, the full cache, FastGen).
	BoundAfter(layer int, p Pass) (limit int, ok bool)
}
