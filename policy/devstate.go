package policy

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// DeviceState is implemented by policies that keep per-token state inside
// the engine's cache (the NAMM's spectrogram EMA and STFT tail), so that the
// attention rows it is made from never leave the compute graph. The engine
// stores StateWidth float32 values per KV head and cache slot next to K and
// V, updates them inside each layer's graph with UpdateState, gathers them
// with K and V on eviction, and hands the tensors to Update in LayerView.State.
type DeviceState interface {
	// StateWidth is the number of float32 values per KV head and token; 0
	// means the policy does not use device state (it then reads Rows).
	StateWidth() int
	// StateKind names the update graph: passes of policies with the same
	// kind and control length share compiled graphs.
	StateKind() string
	// StateControl returns the pass's control vector, an input of the update
	// graph computed on the host, for a pass of nReal real tokens padded to
	// width query slots. Its length must depend on the pass's shape only
	// (width, phase), not on positions, or each pass would compile anew.
	StateControl(p Pass, nReal, width int) ([]float32, error)
	// UpdateState builds the update inside the layer graph. rows [K, T, S+T]
	// are the pass's attention probabilities, query heads of a KV group
	// averaged, zero for keys a query cannot see and for padding queries
	// (keys: the S cache slots, then the pass's T tokens); state [K, S, W]
	// is the cache slots' state; ctl is StateControl's vector; writeAt (int32
	// scalar) is the slot where the pass's tokens are appended (the slots
	// from there on are empty, their state zero). It returns the new state
	// [K, S, W], the pass's tokens' state written at slots writeAt...
	UpdateState(rows, state, ctl, writeAt *graph.Node) *graph.Node
}

// DeviceView is the device state of one layer, as LayerView.State gives it
// to a DeviceState policy after a pass.
type DeviceView struct {
	// State [K, C, W] float32 and Pos [K, C] int32 (original positions, -1
	// for empty slots) are the layer's tensors, on the backend's device; a
	// policy may read them on the host (a transfer on accelerators) or pass
	// them to graphs of its own. Valid only during Update.
	State, Pos *tensors.Tensor
	// Slots[k][i] is the cache slot of head k's i-th token (LayerView.Positions order).
	Slots [][]int
}
