// Package policy defines the one interface every KV-cache memory policy
// implements (full cache, StreamingLLM, H2O, L2/KNorm, TOVA, SnapKV, FastGen,
// random and the NAMM), the statistics the engine computes for them, and the
// registry that selects a policy by name.
//
// Einsum alphabet used in shape comments across the repository:
//
//	B batch, T new tokens (queries of a chunk), S cached tokens, N query heads,
//	K KV heads, G query heads per KV group, H head dim, D model dim, L layers.
//
// The engine owns the cache; a policy only reads statistics and answers, per
// layer, which cached tokens each KV head keeps. A policy that keeps per-token
// state (H2O's accumulated attention, NAMM's EMA) compacts that state itself
// with the same indices it returns.
package policy

import "fmt"

// Needs says which statistics a policy wants for one Update call. The engine
// computes only what is asked for: statistics are reduced inside the compute
// graph and only these O(tokens) numbers leave it.
type Needs struct {
	// ColSums: per KV head and cached token, the sum over this pass's queries
	// of the attention probability (query heads of a group averaged). H2O.
	ColSums bool
	// LastRow: per KV head, the attention row of the last query of this pass
	// (group-averaged). TOVA.
	LastRow bool
	// Rows: per KV head, every attention row of this pass (group-averaged),
	// [K][T][S]. NAMM (spectrogram), SnapKV (observation window), FastGen.
	Rows bool
	// KeyNorms: per KV head, the L2 norm of the keys of the tokens added in
	// this pass, [K][T]. L2/KNorm.
	KeyNorms bool
}

// Any reports whether any statistic is needed.
func (n Needs) Any() bool { return n.ColSums || n.LastRow || n.Rows || n.KeyNorms }

// Union returns the statistics wanted by either.
func (n Needs) Union(o Needs) Needs {
	return Needs{n.ColSums || o.ColSums, n.LastRow || o.LastRow, n.Rows || o.Rows, n.KeyNorms || o.KeyNorms}
}

// Phase tells where in a request a forward pass is.
type Phase int

const (
	// Prefill is a chunk of the prompt.
	Prefill Phase = iota
	// Decode is one generated token.
	Decode
)

func (p Phase) String() string {
	if p == Prefill {
		return "prefill"
	}
	return "decode"
}

// Pass describes one forward pass (a prefill chunk or one decoded token),
// before it runs. The engine asks NeedsFor(pass) to know what to compute.
type Pass struct {
	Phase Phase
	// Start is the absolute position of the first token of the pass; the
	// pass covers positions [Start, Start+NewTokens).
	Start     int
	NewTokens int
	// LastPrefill is true for the last chunk of the prompt.
	LastPrefill bool
	// PromptLen is the prompt's length in tokens.
	PromptLen int
}

// Processed is the number of tokens processed once the pass is done.
func (p Pass) Processed() int { return p.Start + p.NewTokens }

// ModelInfo is what a policy learns about the model at Reset.
type ModelInfo struct {
	NumLayers  int
	NumKVHeads int
	NumHeads   int
	HeadDim    int
	// SpecialTokens holds the ids of BOS/EOS/other special tokens (FastGen).
	SpecialTokens map[int]bool
	// Punctuation reports whether a token id decodes to punctuation (FastGen).
	Punctuation func(id int) bool
}

// LayerView is what a policy sees of one layer after a forward pass. All
// slices are owned by the engine and valid only during the call; copy what
// you keep.
type LayerView struct {
	Layer int
	Pass  Pass
	// Positions are the original absolute positions of the cached tokens of
	// each KV head, chronological, the pass's new tokens included at the end.
	// Heads may hold different counts (after a FastGen-like policy); S below
	// is then per head.
	Positions [][]int32 // [K][S]
	// Tokens are the token ids of the whole sequence so far, by absolute
	// position (Tokens[Positions[k][i]] is the id of cached token i of head k).
	Tokens []int
	// Statistics, present when asked for in NeedsFor.
	ColSums  [][]float32   // [K][S]
	LastRow  [][]float32   // [K][S]
	Rows     [][][]float32 // [K][T][S]
	KeyNorms [][]float32   // [K][T] (the new tokens only)
	// State is set for DeviceState policies with a non-zero StateWidth.
	State *DeviceView
}

// NumKVHeads of the layer.
func (v *LayerView) NumKVHeads() int { return len(v.Positions) }

// Len is the largest number of cached tokens among the layer's heads.
func (v *LayerView) Len() int {
	n := 0
	for _, p := range v.Positions {
		n = max(n, len(p))
	}
	return n
}

// Policy decides which cached tokens each KV head keeps.
type Policy interface {
	// Name is the registry name with its options, e.g. "h2o:budget=2048".
	Name() string
	// Reset starts a new sequence.
	Reset(m ModelInfo) error
	// NeedsFor tells the engine which statistics to compute for a pass.
	NeedsFor(p Pass) Needs
	// Update is called after each pass for every layer in order. It returns,
	// per KV head, the ascending indices (into v.Positions[k]) of the tokens
	// to keep, or nil to keep everything. Heads may keep different counts
	// (FastGen); the layer's storage is then sized by the largest and the
	// shorter heads are masked. The newest token must always be kept.
	Update(v *LayerView) (keep [][]int, err error)
}

// ErrBadOption is wrapped by errors about policy names and options.
var ErrBadOption = fmt.Errorf("policy option")
