package namm

import (
	"fmt"
	"sort"
	"strings"

	"github.com/namm-dev/namm/internal/torchzip"
)

// ImportReference reads a checkpoint of the reference implementation
// (SakanaAI/evo-memory, a torch.save zip) and returns its CMA-ES mean as the
// BAM parameters, with the frozen normalisation buffers. The checkpoint holds
// evolution_state.mean [4172] and, among the evolution state's flat keys,
// "stored_buffers_to_save.<...>token_embedding_0_output_mean" / "_var"
// ([1,1,1,17]); "best_stored_buffers_to_save." copies are used when the plain
// ones are absent, and the "online_new_" running buffers are ignored.
func ImportReference(ckptPath string) (*File, error) {
	obj, err := torchzip.Load(ckptPath)
	if err != nil {
		return nil, fmt.Errorf("namm: import %s: %w", ckptPath, err)
	}
	state, err := torchzip.Lookup(obj, "evolution_state")
	if err != nil {
		return nil, fmt.Errorf("namm: import %s: %w", ckptPath, err)
	}
	mean, err := torchzip.LookupTensor(state, "mean")
	if err != nil {
		return nil, fmt.Errorf("namm: import %s: %w", ckptPath, err)
	}
	if len(mean.Float32) != NumParams {
		return nil, fmt.Errorf("namm: import %s: %w: evolution_state.mean has %d values (shape %v), want %d", ckptPath, ErrBadFile, len(mean.Float32), mean.Shape, NumParams)
	}
	f := &File{Path: ckptPath, Params: append([]float32(nil), mean.Float32...)}
	if g, ok := lookupInt(state, "generation"); ok {
		f.Generation = g
	}
	for _, b := range []struct {
		suffix string
		dst    *[Bins]float32
	}{{"token_embedding_0_output_mean", &f.Norm.Mean}, {"token_embedding_0_output_var", &f.Norm.Var}} {
		t, err := findBuffer(state, b.suffix)
		if err != nil {
			return nil, fmt.Errorf("namm: import %s: %w", ckptPath, err)
		}
		copy(b.dst[:], t.Float32)
	}
	if err := f.check(ckptPath); err != nil {
		return nil, err
	}
	return f, nil
}

// findBuffer returns the tensor of 17 values whose key ends with suffix,
// preferring the stored buffers over the best ones and skipping online_new_.
func findBuffer(state any, suffix string) (*torchzip.Tensor, error) {
	m, ok := state.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: evolution_state is not a dict", ErrBadFile)
	}
	var keys []string
	for k, v := range m {
		if _, isT := v.(*torchzip.Tensor); isT && strings.HasSuffix(k, suffix) && !strings.Contains(k, "online_new_") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no tensor key ending in %q in evolution_state (the NAMM was saved without its normalisation buffers?)", ErrBadFile, suffix)
	}
	// "stored_buffers_to_save." sorts before "best_...": rank best last
	sort.Slice(keys, func(i, j int) bool {
		bi, bj := strings.Contains(keys[i], "best_"), strings.Contains(keys[j], "best_")
		if bi != bj {
			return !bi
		}
		return keys[i] < keys[j]
	})
	t := m[keys[0]].(*torchzip.Tensor)
	if len(t.Float32) != Bins {
		return nil, fmt.Errorf("%w: evolution_state[%q] has shape %v, want 17 values", ErrBadFile, keys[0], t.Shape)
	}
	return t, nil
}

func lookupInt(obj any, key string) (int, bool) {
	v, err := torchzip.Lookup(obj, key)
	if err != nil {
		return 0, false
	}
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	}
	return 0, false
}
