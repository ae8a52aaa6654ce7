// Package kvcache is one sequence's KV cache: per layer the K, V and
// position buffers (and a memory policy's per-token device state), a host
// index per KV head of which slot holds which token, and the operations a
// pass and an eviction perform on them: append, gather (compaction into new,
// smaller buffers: memory really freed), holes (evicted slots masked in
// place), and the checks of a policy's answer.
//
// On backends whose buffers Go shares (the pure-Go one) the data operations
// here are plain Go copies. On a GPU the engine runs them as graphs (a
// DynamicUpdateSlice on donated buffers, a Gather) and uses only the
// bookkeeping of this package.
//
// Layout (einsum alphabet of package policy): K [K, C, H], V [K, H, C]
// (transposed so that P.V streams contiguous rows), positions [K, C] int32
// (-1 for an empty slot), state [K, C, W] float32. C is the capacity.
package kvcache

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Spec is the shape of a cache: what every layer's buffers hold per slot.
type Spec struct {
	NumLayers  int
	NumKVHeads int
	HeadDim    int
	DType      dtypes.DType // of K and V
	// StateWidth is a policy's device state per KV head and slot (0: none).
	StateWidth int
}

// SlotBytes is the memory of one slot of one layer: K, V and the position
// of every KV head (a policy's state not included).
func (s Spec) SlotBytes() int64 {
	return int64(s.NumKVHeads) * (2*int64(s.HeadDim)*int64(s.DType.Size()) + 4)
}

// Layer is one layer's cache: buffers plus a host index of which slot
// holds which token.
type Layer struct {
	K, V, Pos *tensors.Tensor // [K, C, H], [K, H, C], [K, C] int32
	Feat      *tensors.Tensor // [K, C, W] float32 policy state, or nil
	Capacity  int             // C
	Used      int             // slots [0, Used) may hold tokens; a pass writes at Used
	Heads     []Head          // [K]
}

// Head lists one KV head's cached tokens in chronological order: their
// original positions and the slots holding them. It is kept up to date
// incrementally (appends per pass, rebuilt on a gather), so building a
// policy's view costs nothing per token.
type Head struct {
	Pos  []int32
	Slot []int
}

// Cache is every layer's cache of one sequence.
type Cache struct {
	Spec   Spec
	Layers []Layer
}

// TokensPerLayer returns, per layer, the tokens held (max over heads).
func (c *Cache) TokensPerLayer() []int {
	out := make([]int, len(c.Layers))
	for i := range c.Layers {
		out[i] = c.Layers[i].Tokens()
	}
	return out
}

// Bytes is the memory of K, V and positions allocated now, every layer.
func (c *Cache) Bytes() int64 {
	var total int64
	for _, l := range c.Layers {
		total += c.Spec.SlotBytes() * int64(l.Capacity)
	}
	return total
}

// MaxUsed is the largest Used of the layers.
func (c *Cache) MaxUsed() int {
	n := 0
	for _, l := range c.Layers {
		n = max(n, l.Used)
	}
	return n
}

// AppendIndex records a pass's real tokens, written at slot Used on: every
// head holds them. Padding tokens were written past them with position -1;
// the next pass overwrites them.
func (l *Layer) AppendIndex(pos []int32) {
	for k := range l.Heads {
		h := &l.Heads[k]
		h.Pos = append(h.Pos, pos...)
		for i := range pos {
			h.Slot = append(h.Slot, l.Used+i)
		}
	}
	l.Used += len(pos)
}

// Tokens is the largest number of tokens any head of the layer holds.
func (l *Layer) Tokens() int {
	n := 0
	for _, h := range l.Heads {
		n = max(n, len(h.Pos))
	}
	return n
}

// HasHoles reports whether evicted slots lie below Used (PunchHoles).
func (l *Layer) HasHoles() bool { return l.Tokens() < l.Used }

// Slots returns per head the slot of each of its tokens (shared, not a copy).
func (l *Layer) Slots() [][]int {
	out := make([][]int, len(l.Heads))
	for k, h := range l.Heads {
		out[k] = h.Slot
	}
	return out
}

// KeptSlots checks a policy's answer (per head, ascending indices of the
// tokens kept, the newest among them) and turns it into the slots each head
// keeps; removed says whether any token goes.
func (l *Layer) KeptSlots(keep [][]int) (slots [][]int, removed bool, err error) {
	kh := len(l.Heads)
	if len(keep) != kh {
		return nil, false, fmt.Errorf("returned %d heads, want %d", len(keep), kh)
	}
	slots = make([][]int, kh)
	for k := range kh {
		slotOf := l.Heads[k].Slot
		prev := -1
		for _, i := range keep[k] {
			if i <= prev || i >= len(slotOf) {
				return nil, false, fmt.Errorf("head %d: keep indices must be ascending and in [0, %d)", k, len(slotOf))
			}
			prev = i
			slots[k] = append(slots[k], slotOf[i])
		}
		if len(keep[k]) == 0 || keep[k][len(keep[k])-1] != len(slotOf)-1 {
			return nil, false, fmt.Errorf("head %d: the newest token must be kept", k)
		}
		removed = removed || len(keep[k]) < len(slotOf)
	}
	return slots, removed, nil
}

// PunchHoles drops from the index every token not in keep (checked by
// KeptSlots), leaving the others in their slots; the caller marks the
// freed slots empty in the positions buffer (FillPositions).
func (l *Layer) PunchHoles(keep [][]int) {
	for k := range l.Heads {
		h := &l.Heads[k]
		pos, slot := make([]int32, len(keep[k])), make([]int, len(keep[k]))
		for j, i := range keep[k] {
			pos[j], slot[j] = h.Pos[i], h.Slot[i]
		}
		h.Pos, h.Slot = pos, slot
	}
}

// FillPositions writes the positions buffer [K, c] of a head index: each
// held token's position at its slot, -1 elsewhere.
func FillPositions(p []int32, heads []Head, c int) {
	for i := range p {
		p[i] = -1
	}
	for k, h := range heads {
		for i, sl := range h.Slot {
			p[k*c+sl] = h.Pos[i]
		}
	}
}

// Compaction is a gather's plan: per head the slots kept, in order, and
// their positions; Used is the largest head's count.
type Compaction struct {
	Slots [][]int
	Pos   [][]int32
	Used  int
}

// Compact plans moving the listed slots (per head, ascending; nil: every
// held token) to the front of new buffers.
func (l *Layer) Compact(slots [][]int) Compaction {
	kh := len(l.Heads)
	c := Compaction{Pos: make([][]int32, kh)}
	if slots == nil {
		c.Slots = make([][]int, kh)
		for k, h := range l.Heads {
			c.Slots[k], c.Pos[k] = h.Slot, h.Pos
		}
	} else {
		c.Slots = slots
		for k, sl := range slots {
			h := l.Heads[k]
			j := 0
			for _, slot := range sl {
				for h.Slot[j] != slot {
					j++
				}
				c.Pos[k] = append(c.Pos[k], h.Pos[j])
			}
		}
	}
	for _, sl := range c.Slots {
		c.Used = max(c.Used, len(sl))
	}
	return c
}

// Reindex records a done compaction: head k's tokens now fill slots
// 0..len-1. Heads that keep fewer tokens leave empty slots below Used, so
// that every head's next token lands in slot Used.
func (l *Layer) Reindex(c Compaction) {
	heads := make([]Head, len(l.Heads))
	for k := range heads {
		heads[k].Pos = append([]int32(nil), c.Pos[k]...)
		heads[k].Slot = make([]int, len(c.Pos[k]))
		for i := range heads[k].Slot {
			heads[k].Slot[i] = i
		}
	}
	l.Used, l.Heads = c.Used, heads
}

// NewBuffers allocates empty K, V and positions of a capacity (and a
// zero state when the spec has one). With share, they are made in memory
// the backend shares with Go (the host cache).
func NewBuffers(b backends.Backend, share bool, s Spec, capacity int) (k, v, pos, feat *tensors.Tensor, err error) {
	kh, hd := s.NumKVHeads, s.HeadDim
	k = tensors.FromShape(shapes.Make(s.DType, kh, capacity, hd))
	v = tensors.FromShape(shapes.Make(s.DType, kh, hd, capacity))
	p := make([]int32, kh*capacity)
	for i := range p {
		p[i] = -1
	}
	pos = tensors.FromFlatDataAndDimensions(p, kh, capacity)
	ts := []*tensors.Tensor{k, v, pos}
	if s.StateWidth > 0 {
		feat = tensors.FromShape(shapes.Make(dtypes.Float32, kh, capacity, s.StateWidth))
		ts = append(ts, feat)
	}
	if share {
		for _, t := range ts {
			if err := t.MaterializeOnDevice(b, true, 0); err != nil {
				return nil, nil, nil, nil, err
			}
		}
	}
	return k, v, pos, feat, nil
}

// NewLayer is an empty layer cache of a capacity.
func NewLayer(b backends.Backend, share bool, s Spec, capacity int) (Layer, error) {
	k, v, pos, feat, err := NewBuffers(b, share, s, capacity)
	if err != nil {
		return Layer{}, err
	}
	return Layer{K: k, V: v, Pos: pos, Feat: feat, Capacity: capacity, Heads: make([]Head, s.NumKVHeads)}, nil
}

// AppendHost writes a pass's new keys [K, T, H], values [K, H, T] and
// positions [T] (-1 for padding) at slot Used of a host cache.
func (l *Layer) AppendHost(s Spec, newK, newV *tensors.Tensor, qpos []int32) error {
	kh, hd, c, t, at := s.NumKVHeads, s.HeadDim, l.Capacity, len(qpos), l.Used
	switch s.DType {
	case dtypes.Float32:
		hostAppend[float32](l, newK, newV, kh, hd, c, t, at)
	case dtypes.BFloat16:
		hostAppend[bfloat16.BFloat16](l, newK, newV, kh, hd, c, t, at)
	default:
		return fmt.Errorf("kvcache: host cache does not support %s", s.DType)
	}
	tensors.MustMutableFlatData(l.Pos, func(p []int32) {
		for k := range kh {
			copy(p[k*c+at:k*c+at+t], qpos)
		}
	})
	return nil
}

func hostAppend[T float32 | bfloat16.BFloat16](l *Layer, newK, newV *tensors.Tensor, kh, hd, c, t, at int) {
	nk := tensors.MustCopyFlatData[T](newK) // [K, T, H]
	nv := tensors.MustCopyFlatData[T](newV) // [K, H, T]
	tensors.MustMutableFlatData(l.K, func(dst []T) {
		for k := range kh {
			copy(dst[(k*c+at)*hd:(k*c+at+t)*hd], nk[k*t*hd:(k+1)*t*hd])
		}
	})
	tensors.MustMutableFlatData(l.V, func(dst []T) {
		for k := range kh {
			for h := range hd {
				copy(dst[(k*hd+h)*c+at:(k*hd+h)*c+at+t], nv[(k*hd+h)*t:(k*hd+h+1)*t])
			}
		}
	})
}

// GatherHost copies a host cache into new shared buffers of a capacity,
// keeping per head the listed slots in order, and sets the layer's buffers
// and capacity (the index is Reindex's job).
func (l *Layer) GatherHost(b backends.Backend, s Spec, slots [][]int, capacity int) error {
	k, v, pos, feat, err := NewBuffers(b, true, s, capacity)
	if err != nil {
		return err
	}
	old := l.Capacity
	switch s.DType {
	case dtypes.Float32:
		hostGather[float32](l, k, v, slots, s.HeadDim, capacity)
	case dtypes.BFloat16:
		hostGather[bfloat16.BFloat16](l, k, v, slots, s.HeadDim, capacity)
	default:
		return fmt.Errorf("kvcache: host cache does not support %s", s.DType)
	}
	tensors.MustConstFlatData(l.Pos, func(src []int32) {
		tensors.MustMutableFlatData(pos, func(dst []int32) { GatherRows(dst, src, slots, old, capacity, 1) })
	})
	if l.Feat != nil && feat != nil {
		w := s.StateWidth
		tensors.MustConstFlatData(l.Feat, func(src []float32) {
			tensors.MustMutableFlatData(feat, func(dst []float32) { GatherRows(dst, src, slots, old, capacity, w) })
		})
	}
	l.K, l.V, l.Pos, l.Feat, l.Capacity = k, v, pos, feat, capacity
	return nil
}

// GatherRows copies, for each head h, the rows slots[h] of src [K, oldCap, w]
// into the first rows of dst [K, newCap, w], in order.
func GatherRows[T any](dst, src []T, slots [][]int, oldCap, newCap, w int) {
	for h, sl := range slots {
		for i, slot := range sl {
			copy(dst[(h*newCap+i)*w:(h*newCap+i+1)*w], src[(h*oldCap+slot)*w:(h*oldCap+slot+1)*w])
		}
	}
}

func hostGather[T float32 | bfloat16.BFloat16](l *Layer, k, v *tensors.Tensor, slots [][]int, hd, capacity int) {
	old := l.Capacity
	tensors.MustConstFlatData(l.K, func(src []T) {
		tensors.MustMutableFlatData(k, func(dst []T) { GatherRows(dst, src, slots, old, capacity, hd) })
	})
	tensors.MustConstFlatData(l.V, func(src []T) {
		tensors.MustMutableFlatData(v, func(dst []T) {
			for h, sl := range slots {
				for d := range hd {
					so, do := (h*hd+d)*old, (h*hd+d)*capacity
					for i, slot := range sl {
						dst[do+i] = src[so+slot]
					}
				}
			}
		})
	})
}

// GatherIndex lays out the slots each head keeps as a Gather graph's
// inputs: idx [K, capacity] (the kept slots first, zeros after) and
// keepLen [K].
func GatherIndex(slots [][]int, kh, capacity int) (idx, keepLen *tensors.Tensor) {
	ix := make([]int32, kh*capacity)
	kl := make([]int32, kh)
	for k, sl := range slots {
		kl[k] = int32(len(sl))
		for i, slot := range sl {
			ix[k*capacity+i] = int32(slot)
		}
	}
	return tensors.FromFlatDataAndDimensions(ix, kh, capacity), tensors.FromFlatDataAndDimensions(kl, kh)
}
