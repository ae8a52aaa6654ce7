package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/model"
)

// The cache is kept in one of two ways, chosen by the backend's abilities:
//   - host: backends with shared buffers (the pure-Go one) keep K, V and
//     positions in memory that both Go and the backend see; appends and
//     gathers are plain Go copies, no graph and no transfer;
//   - device: other backends (XLA on a GPU) append with a DynamicUpdateSlice
//     graph on donated buffers and gather with a Gather graph.

func (e *Engine) hostCache() bool { return e.Backend.HasSharedBuffers() }

// newCacheTensors allocates an empty cache of the given capacity.
func (e *Engine) newCacheTensors(capacity int) (k, v, pos *tensors.Tensor, err error) {
	cfg := e.Config
	kh, hd := cfg.NumKVHeads, cfg.HeadDim
	k = tensors.FromShape(shapes.Make(e.Weights.DType, kh, capacity, hd))
	v = tensors.FromShape(shapes.Make(e.Weights.DType, kh, hd, capacity))
	p := make([]int32, kh*capacity)
	for i := range p {
		p[i] = -1
	}
	pos = tensors.FromFlatDataAndDimensions(p, kh, capacity)
	if e.hostCache() {
		for _, t := range []*tensors.Tensor{k, v, pos} {
			if err := t.MaterializeOnDevice(e.Backend, true, 0); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	return k, v, pos, nil
}

// gatherIndex lays out the slots each head keeps as the Gather graphs'
// inputs: idx [K, capacity] (the kept slots first, zeros after) and
// keepLen [K].
func gatherIndex(slots [][]int, kh, capacity int) (idx, keepLen *tensors.Tensor) {
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

// newFeatTensor allocates zero device state [K, capacity, width].
func (e *Engine) newFeatTensor(capacity, width int) (*tensors.Tensor, error) {
	f := tensors.FromShape(shapes.Make(dtypes.Float32, e.Config.NumKVHeads, capacity, width))
	if e.hostCache() {
		if err := f.MaterializeOnDevice(e.Backend, true, 0); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// gatherFeat rebuilds layer l's device state like gatherKV does K and V.
func (s *Session) gatherFeat(lc *layerCache, slots [][]int, capacity int) error {
	e := s.e
	kh, w := e.Config.NumKVHeads, s.featWidth
	if !e.hostCache() {
		ex, err := e.featGatherExec()
		if err != nil {
			return err
		}
		idx, keepLen := gatherIndex(slots, kh, capacity)
		out, err := e.timed(fmt.Sprintf("gather-state/c%d/c%d/w%d", lc.capacity, capacity, w), ex, lc.feat, idx, keepLen)
		if err != nil {
			return err
		}
		release(lc.feat)
		lc.feat = out[0]
		return nil
	}
	f, err := e.newFeatTensor(capacity, w)
	if err != nil {
		return err
	}
	tensors.MustConstFlatData(lc.feat, func(src []float32) {
		tensors.MustMutableFlatData(f, func(dst []float32) { gatherRows(dst, src, slots, lc.capacity, capacity, w) })
	})
	lc.feat = f
	return nil
}

// appendKV writes a pass's new keys [K, T, H], values [K, H, T] and
// positions into layer l's cache at slot lc.used.
func (s *Session) appendKV(lc *layerCache, newK, newV *tensors.Tensor, qpos []int32, qposT *tensors.Tensor) error {
	e := s.e
	if !e.hostCache() {
		ex, err := e.appendExec()
		if err != nil {
			return err
		}
		key := fmt.Sprintf("append/t%d/c%d", len(qpos), lc.capacity)
		dk, err1 := graph.DonateTensorBuffer(lc.k, e.Backend, 0)
		dv, err2 := graph.DonateTensorBuffer(lc.v, e.Backend, 0)
		dp, err3 := graph.DonateTensorBuffer(lc.pos, e.Backend, 0)
		if err1 != nil || err2 != nil || err3 != nil {
			return fmt.Errorf("engine: donating cache buffers: %v %v %v", err1, err2, err3)
		}
		out, err := e.timed(key, ex, dk, dv, dp, newK, newV, qposT, int32(lc.used))
		if err != nil {
			return err
		}
		lc.k, lc.v, lc.pos = out[0], out[1], out[2]
		return nil
	}
	cfg := e.Config
	kh, hd, c, t, at := cfg.NumKVHeads, cfg.HeadDim, lc.capacity, len(qpos), lc.used
	switch e.Weights.DType {
	case dtypes.Float32:
		hostAppend[float32](lc, newK, newV, kh, hd, c, t, at)
	case dtypes.BFloat16:
		hostAppend[bfloat16.BFloat16](lc, newK, newV, kh, hd, c, t, at)
	default:
		return fmt.Errorf("engine: host cache does not support %s", e.Weights.DType)
	}
	tensors.MustMutableFlatData(lc.pos, func(p []int32) {
		for k := range kh {
			copy(p[k*c+at:k*c+at+t], qpos)
		}
	})
	return nil
}

func hostAppend[T float32 | bfloat16.BFloat16](lc *layerCache, newK, newV *tensors.Tensor, kh, hd, c, t, at int) {
	nk := tensors.MustCopyFlatData[T](newK) // [K, T, H]
	nv := tensors.MustCopyFlatData[T](newV) // [K, H, T]
	tensors.MustMutableFlatData(lc.k, func(dst []T) {
		for k := range kh {
			copy(dst[(k*c+at)*hd:(k*c+at+t)*hd], nk[k*t*hd:(k+1)*t*hd])
		}
	})
	tensors.MustMutableFlatData(lc.v, func(dst []T) {
		for k := range kh {
			for h := range hd {
				copy(dst[(k*hd+h)*c+at:(k*hd+h)*c+at+t], nv[(k*hd+h)*t:(k*hd+h+1)*t])
			}
		}
	})
}

// gatherKV rebuilds layer l's cache with capacity slots, keeping per head
// the listed slots in order.
func (s *Session) gatherKV(lc *layerCache, slots [][]int, capacity int) error {
	e := s.e
	cfg := e.Config
	kh := cfg.NumKVHeads
	if lc.feat != nil {
		// Before K and V: gatherFeat reads lc.capacity, the old one.
		if err := s.gatherFeat(lc, slots, capacity); err != nil {
			return err
		}
	}
	if !e.hostCache() {
		ex, err := e.gatherExec()
		if err != nil {
			return err
		}
		idx, keepLen := gatherIndex(slots, kh, capacity)
		key := fmt.Sprintf("gather/c%d/c%d", lc.capacity, capacity)
		out, err := e.timed(key, ex, lc.k, lc.v, lc.pos, idx, keepLen)
		if err != nil {
			return err
		}
		release(lc.k, lc.v, lc.pos)
		lc.k, lc.v, lc.pos = out[0], out[1], out[2]
		lc.capacity = capacity
		return nil
	}
	k, v, pos, err := e.newCacheTensors(capacity)
	if err != nil {
		return err
	}
	switch e.Weights.DType {
	case dtypes.Float32:
		hostGather[float32](lc, k, v, slots, cfg.HeadDim, capacity)
	case dtypes.BFloat16:
		hostGather[bfloat16.BFloat16](lc, k, v, slots, cfg.HeadDim, capacity)
	}
	old := lc.capacity
	tensors.MustConstFlatData(lc.pos, func(src []int32) {
		tensors.MustMutableFlatData(pos, func(dst []int32) { gatherRows(dst, src, slots, old, capacity, 1) })
	})
	lc.k, lc.v, lc.pos, lc.capacity = k, v, pos, capacity
	return nil
}

// release frees the device buffers of tensors the cache no longer holds.
// Go's garbage collector sees only their small Go headers, not the device
// memory behind them, so it may not run their finalizers before a GPU
// fills up: an 8k prefill of the Llama-3-8B shape with H2O, whose chunks
// each gather every layer, ran out of an H200's 139 GB. Freeing a buffer
// that a queued execution still reads is safe: PJRT keeps it until that
// execution is done.
func release(ts ...*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
}

// gatherRows copies, for each head h, the rows slots[h] of src [K, oldCap, w]
// into the first rows of dst [K, newCap, w], in order.
func gatherRows[T any](dst, src []T, slots [][]int, oldCap, newCap, w int) {
	for h, sl := range slots {
		for i, slot := range sl {
			copy(dst[(h*newCap+i)*w:(h*newCap+i+1)*w], src[(h*oldCap+slot)*w:(h*oldCap+slot+1)*w])
		}
	}
}

func hostGather[T float32 | bfloat16.BFloat16](lc *layerCache, k, v *tensors.Tensor, slots [][]int, hd, capacity int) {
	old := lc.capacity
	tensors.MustConstFlatData(lc.k, func(src []T) {
		tensors.MustMutableFlatData(k, func(dst []T) { gatherRows(dst, src, slots, old, capacity, hd) })
	})
	tensors.MustConstFlatData(lc.v, func(src []T) {
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

func (e *Engine) appendExec() (*graph.Exec, error) {
	return e.exec(execName("append"), 256, func(in []*graph.Node) []*graph.Node {
		st := model.AppendKV(model.LayerState{K: in[0], V: in[1], Pos: in[2]}, in[3], in[4], in[5], in[6])
		return []*graph.Node{st.K, st.V, st.Pos}
	})
}
