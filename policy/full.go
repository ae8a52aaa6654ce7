package policy

// Full keeps every token: the uncompressed baseline every score is
// normalised by. It takes no options and no budget, and needs no statistics.
type Full struct{}

func init() {
	Register("full", "keep every token (no eviction); the reference all scores are normalised by", newFull)
}

func newFull(opts Options, b Budget) (Policy, error) {
	if err := opts.Check("full"); err != nil {
		return nil, err
	}
	if err := rejectBudget("full", "it keeps every token", b); err != nil {
		return nil, err
	}
	return Full{}, nil
}

// Name implements Policy.
func (Full) Name() string { return "full" }

// Reset implements Policy.
func (Full) Reset(ModelInfo) error { return nil }

// NeedsFor implements Policy: nothing.
func (Full) NeedsFor(Pass) Needs { return Needs{} }

// Update implements Policy: keep everything.
func (Full) Update(*LayerView) ([][]int, error) { return nil, nil }

// KeepsAll implements KeepsAll.
func (Full) KeepsAll() bool { return true }
