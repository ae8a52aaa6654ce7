package policy

import (
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Optional capabilities of a Policy. Each is a small interface that the
// engine, the tests or the CLI find by type assertion; a policy implements
// only those it has. DeviceState (devstate.go) is one more.

var (
	_ Bounded  = (*ScorerPolicy)(nil)
	_ Bounded  = (*SnapKV)(nil)
	_ KeepsAll = Full{}
)

// Bounded is implemented by policies that hold every head of a layer at or
// under a token limit once a pass's Update is done. The engine may use it to
// size buffers; the tests use it to check budgets.
type Bounded interface {
	// BoundAfter returns the limit for a head of layer after pass p, and
	// false where the policy promises none for that pass (SnapKV during
	// decoding, FastGen).
	BoundAfter(layer int, p Pass) (limit int, ok bool)
}

// KeepsAll is implemented by policies that never evict (the full cache):
// the engine skips the work only an eviction needs (the graphs of a
// prefill's last chunk over fewer occupied quarters).
type KeepsAll interface {
	KeepsAll() bool
}

// Preparer is implemented by policies that want every layer's view of a
// pass before Update is called for each layer, to batch work across layers
// (the NAMM scores all layers' device states in a few executions instead of
// one or more per layer). The engine calls Prepare once per pass, then
// Update for every layer in order, with the same views.
type Preparer interface {
	Prepare(views []*LayerView) error
}

// Precompiler is implemented by policies with compiled graphs of their own
// (the NAMM's scorer). When a prefill of promptLen tokens starts on a
// compiled backend, the engine calls Precompile in the background with the
// shape of every layer's device state ([K, C, width]) and positions
// ([K, C]) then, so that the graphs the prefill's steps will need compile
// ahead, in parallel, instead of when first met. Errors are the policy's
// to drop: a step meets them when it runs.
type Precompiler interface {
	Precompile(state, pos shapes.Shape, numLayers, promptLen int)
}

// BackendUser is implemented by policies that can run work of their own on
// the engine's backend (the NAMM scores with a BAM graph). The engine calls
// UseBackend after Reset on compiled backends; on the pure-Go backend the
// policy's Go loop is faster and it is not called.
type BackendUser interface {
	UseBackend(b backends.Backend) error
}

// ScoreTimer is implemented by policies that time their own scoring (the
// NAMM's BAM with its inputs), since the last Reset; namm bench --profile
// reports it.
type ScoreTimer interface {
	ScoreTime() time.Duration
}
