package engine

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/namm-dev/namm/internal/bucket"
)

// SequenceBytes estimates the memory one sequence needs at its peak when
// it holds up to tokens tokens: its KV cache with every layer at the
// capacity of all of them plus a chunk (K, V, positions and stateWidth
// floats of policy state per KV head and slot), and the scratch of a
// prefill chunk's attention in one layer (float32 scores over the cache for
// every query head and, on the host, their group averages for a policy's
// statistics): in host memory on the pure-Go backend, in the device's on
// a GPU.
func (e *Engine) SequenceBytes(tokens, stateWidth int) int64 {
	cfg := e.Config
	spec := e.cacheSpec(stateWidth)
	slots := int64(bucket.Round(tokens + e.opts.ChunkSize))
	perSlot := spec.SlotBytes() + int64(cfg.NumKVHeads)*int64(stateWidth)*4
	total := int64(cfg.NumLayers) * slots * perSlot
	t := int64(e.opts.ChunkSize)
	heads := int64(cfg.NumHeads)
	if e.hostCache() {
		heads += int64(cfg.NumKVHeads)
	}
	return total + heads*t*(slots+t)*4
}

// CheckBatch refuses, before it starts, a batch of n sequences of up to
// tokens tokens each that would need more than available bytes
// (SequenceBytes each); available <= 0 checks nothing.
func (e *Engine) CheckBatch(n, tokens, stateWidth int, available int64) error {
	if available <= 0 {
		return nil
	}
	need := int64(n) * e.SequenceBytes(tokens, stateWidth)
	if need > available {
		per := e.SequenceBytes(tokens, stateWidth)
		return fmt.Errorf("engine: a batch of %d sequences of %d tokens needs about %.1f MiB (%.1f MiB each), more than the %.1f MiB available: at most %d fit",
			n, tokens, mib(need), mib(per), mib(available), available/per)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// AvailableMemory is the host memory the kernel reports available
// (MemAvailable in /proc/meminfo), or 0 where it cannot tell.
func AvailableMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// CheckBatchMemory is CheckBatch against the memory available now: the
// host's on the pure-Go backend (whose cache lives in host memory), the
// device's on XLA, as its PJRT plugin reports it (nothing is checked when
// the plugin does not say).
func (e *Engine) CheckBatchMemory(n, tokens, stateWidth int) error {
	if e.hostCache() {
		return e.CheckBatch(n, tokens, stateWidth, AvailableMemory())
	}
	if e.Backend.Name() != "xla" {
		return nil
	}
	free, err := deviceFreeMemory()
	if err != nil {
		return nil
	}
	if err := e.CheckBatch(n, tokens, stateWidth, free); err != nil {
		return fmt.Errorf("%w (device memory)", err)
	}
	return nil
}
