package engine

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/engine/kvcache"
	"github.com/namm-dev/namm/model"
)

// The cache (package kvcache) is kept in one of two ways, chosen by the
// backend's abilities:
//   - host: backends with shared buffers (the pure-Go one) keep K, V and
//     positions in memory that both Go and the backend see; appends and
//     gathers are plain Go copies (kvcache.Layer.AppendHost, GatherHost),
//     no graph and no transfer;
//   - device: other backends (XLA on a GPU) append with a DynamicUpdateSlice
//     graph on donated buffers and gather with a Gather graph (here).

func (e *Engine) hostCache() bool { return e.Backend.HasSharedBuffers() && !e.deviceCache }

// cacheSpec is the shape of a session's cache (stateWidth: its policy's
// device state per slot, 0 for none).
func (e *Engine) cacheSpec(stateWidth int) kvcache.Spec {
	cfg := e.Config
	return kvcache.Spec{NumLayers: cfg.NumLayers, NumKVHeads: cfg.NumKVHeads, HeadDim: cfg.HeadDim,
		DType: e.Weights.DType, StateWidth: stateWidth}
}

// appendKV writes a pass's new keys [K, T, H], values [K, H, T] and
// positions into layer lc's cache at slot lc.Used.
func (s *Session) appendKV(lc *kvcache.Layer, newK, newV *tensors.Tensor, qpos []int32, qposT *tensors.Tensor) error {
	e := s.e
	if e.hostCache() {
		return lc.AppendHost(s.cache.Spec, newK, newV, qpos)
	}
	ex, err := e.appendExec()
	if err != nil {
		return err
	}
	key := fmt.Sprintf("append/t%d/c%d", len(qpos), lc.Capacity)
	dk, err1 := graph.DonateTensorBuffer(lc.K, e.Backend, 0)
	dv, err2 := graph.DonateTensorBuffer(lc.V, e.Backend, 0)
	dp, err3 := graph.DonateTensorBuffer(lc.Pos, e.Backend, 0)
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("engine: donating cache buffers: %v %v %v", err1, err2, err3)
	}
	out, err := e.timed(key, ex, dk, dv, dp, newK, newV, qposT, int32(lc.Used))
	if err != nil {
		return err
	}
	lc.K, lc.V, lc.Pos = out[0], out[1], out[2]
	return nil
}

// gatherKV rebuilds layer lc's buffers with capacity slots, keeping per head
// the listed slots in order (its index is the caller's: kvcache.Reindex).
func (s *Session) gatherKV(lc *kvcache.Layer, slots [][]int, capacity int) error {
	e := s.e
	if e.hostCache() {
		return lc.GatherHost(e.Backend, s.cache.Spec, slots, capacity)
	}
	kh := e.Config.NumKVHeads
	idx, keepLen := kvcache.GatherIndex(slots, kh, capacity)
	if lc.Feat != nil {
		ex, err := e.featGatherExec()
		if err != nil {
			return err
		}
		out, err := e.timed(fmt.Sprintf("gather-state/c%d/c%d/w%d", lc.Capacity, capacity, s.cache.Spec.StateWidth), ex, lc.Feat, idx, keepLen)
		if err != nil {
			return err
		}
		release(lc.Feat)
		lc.Feat = out[0]
	}
	ex, err := e.gatherExec()
	if err != nil {
		return err
	}
	key := fmt.Sprintf("gather/c%d/c%d", lc.Capacity, capacity)
	out, err := e.timed(key, ex, lc.K, lc.V, lc.Pos, idx, keepLen)
	if err != nil {
		return err
	}
	release(lc.K, lc.V, lc.Pos)
	lc.K, lc.V, lc.Pos = out[0], out[1], out[2]
	lc.Capacity = capacity
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

func (e *Engine) appendExec() (*graph.Exec, error) {
	return e.exec(execName("append"), 256, func(in []*graph.Node) []*graph.Node {
		st := model.AppendKV(model.LayerState{K: in[0], V: in[1], Pos: in[2]}, in[3], in[4], in[5], in[6])
		return []*graph.Node{st.K, st.V, st.Pos}
	})
}
