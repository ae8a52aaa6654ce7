// Package engine runs a model on a compute backend: chunked prefill, greedy
// decoding, of one sequence (Session) or several together (Batch), each
// with a KV cache (package kvcache) whose tokens its memory policy may
// evict between passes. Evicted tokens really leave the buffers: the cache
// is gathered into smaller tensors, with capacities rounded to a few
// buckets so only a handful of graphs compile.
package engine

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // the pure-Go backend, the default
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/policy"
)

// Options configure an Engine.
type Options struct {
	// Backend is "go" (pure Go, the default), "go:ops_sequential", or
	// "xla:PATH/TO/pjrt_plugin.so" for an NVIDIA GPU. A plugin is never
	// downloaded.
	Backend string
	// DType of the weights and activations: Float32 (default on "go") or
	// BFloat16 (default on "xla").
	DType dtypes.DType
	// ChunkSize is the prefill chunk length in tokens (default 128).
	ChunkSize int
	// NoFuse runs one graph per layer on compiled backends even when a pass
	// could run as one graph (fused.go); for comparisons.
	NoFuse bool
	// PrefixGraphs lets a fused pass attend only to the quarters of the
	// cache capacity that hold tokens (prefixQuarters): less attention over
	// empty slots in prefill, up to three more compiled graphs per pass
	// shape (~5-9 s each for Llama-3-8B on an H200). Worth it when one
	// process runs many prompts (eval, evolve), not for one generation.
	PrefixGraphs bool
	// Profile waits for each pass to finish on the device before the memory
	// policy runs, so that SessionStats can split the time between the
	// model's passes and the policy (on asynchronous backends the policy's
	// first device call would otherwise absorb the pass). It costs one small
	// device-to-host copy per pass; for benchmarks.
	Profile bool
	// Precompile compiles a prefill's pass graphs ahead, in the background,
	// several at once, and lets a policy with graphs of its own (the NAMM's
	// scorer) do the same (precompile.go): XLA compiles on one thread,
	// so a first prompt that meets its graphs one by one waits for each
	// (docs/performance.md, "Time to the first token"). The command line
	// turns it on by default; no effect on the pure-Go backend.
	Precompile bool
}

// Engine holds a loaded model and its compiled programs. It is safe for
// concurrent use by several Sessions.
type Engine struct {
	Config  *model.Config
	Weights *model.Weights
	Backend backends.Backend
	opts    Options
	invFreq []float64

	mu sync.Mutex
	// execs holds the compiled programs by key (layerKey, fusedKey,
	// logitsKey or an execName); see exec.
	execs map[any]*graph.Exec
	// oneCapacity keeps all layers at one capacity on any backend (tests;
	// see Session.oneCapacity).
	oneCapacity bool
	// graphLayers runs every layer as a graph (model.Layer) even where the
	// host could run it (hostProjections): the reference of the host path's
	// tests.
	graphLayers bool
	// noHoles gathers every eviction into a compacted cache instead of
	// leaving holes (Session.punchHoles): the reference of its test.
	noHoles bool
	// deviceCache keeps the cache as on a device (graphs append, gather and
	// run fused passes) even on a backend that shares buffers: tests of the
	// GPU's paths on the pure-Go backend.
	deviceCache bool
	compiled    map[string]time.Duration // graph key -> first-call time (compile + run), or compile time ahead
	background  sync.WaitGroup           // compilations ahead (precompile)
	ahead       map[string]bool          // graph keys compiled ahead
}

// OpenBackend creates a backend from a spec ("go", "go:CONFIG" or "xla:PATH").
// Plain "go" runs graphs with the sequential scheduler, measured faster for
// both prefill and decode on a 2-core machine (docs/performance.md).
// GoMLX v0.26's goroutine-per-node scheduler ("go:ops_parallel") is refused:
// it deadlocks when more large matmuls are ready at once than it has
// workers (each waits for workers the others hold), which the NAMM's
// in-graph state update and BAM blocks reach on a 2-core machine.
func OpenBackend(spec string) (b backends.Backend, err error) {
	if spec == "" || spec == "go" {
		spec = "go:ops_sequential"
	}
	name, conf, _ := strings.Cut(spec, ":")
	switch name {
	case "go":
		if strings.Contains(conf, "ops_parallel") {
			return nil, fmt.Errorf("backend %q: GoMLX v0.26's parallel scheduler can deadlock on these graphs; use go (the sequential scheduler, also the faster one here)", spec)
		}
	case "xla":
		if !xlaBuilt {
			return nil, fmt.Errorf("backend %q: this binary was built with -tags noxla (CPU only); build without the tag for the XLA backend", spec)
		}
		if !strings.Contains(spec, ":") {
			return nil, fmt.Errorf("backend %q: give the PJRT plugin path, e.g. xla:/path/to/xla_cuda_plugin.so (namm never downloads one)", spec)
		}
		if _, err := os.Stat(conf); err != nil {
			return nil, fmt.Errorf("backend xla: PJRT plugin: %w", err)
		}
		os.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
		os.Setenv("GOPJRT_CUDA_CHECKS", "0")
		// XLA's command buffers (CUDA graphs) made every pass slower on the
		// GPUs measured (docs/performance.md): off unless XLA_FLAGS says
		// otherwise.
		if f := os.Getenv("XLA_FLAGS"); !strings.Contains(f, "xla_gpu_enable_command_buffer") {
			os.Setenv("XLA_FLAGS", strings.TrimSpace(f+" --xla_gpu_enable_command_buffer="))
		}
	default:
		return nil, fmt.Errorf("unknown backend %q (valid: go, go:ops_sequential, xla:PATH)", spec)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("backend %q: %v", spec, r)
		}
	}()
	b, err = backends.NewWithConfig(spec)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %s", spec, trimBackendPrefix(err.Error(), name))
	}
	return b, nil
}

// trimBackendPrefix drops the `backend "NAME":: ` GoMLX puts before its
// errors, so that the backend is named once.
func trimBackendPrefix(msg, name string) string {
	for _, p := range []string{fmt.Sprintf("backend %q:: ", name), fmt.Sprintf("backend %q: ", name)} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// SetProfile sets Options.Profile for the sessions started after it.
func (e *Engine) SetProfile(on bool) { e.opts.Profile = on }

// DefaultDType is the compute dtype of a backend when none is asked for:
// bfloat16 on a GPU (XLA), float32 on the CPU.
func DefaultDType(backend string) dtypes.DType {
	if strings.HasPrefix(backend, "xla") {
		return dtypes.BFloat16
	}
	return dtypes.Float32
}

// Load opens a Hugging Face model directory.
func Load(dir string, opts Options) (*Engine, error) {
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	b, err := OpenBackend(opts.Backend)
	if err != nil {
		return nil, err
	}
	if opts.DType == dtypes.InvalidDType {
		opts.DType = DefaultDType(opts.Backend)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 128
	}
	w, err := model.LoadWeights(dir, cfg, opts.DType)
	if err != nil {
		return nil, err
	}
	return New(cfg, w, b, opts), nil
}

// New makes an engine from loaded parts.
func New(cfg *model.Config, w *model.Weights, b backends.Backend, opts Options) *Engine {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 128
	}
	return &Engine{
		Config: cfg, Weights: w, Backend: b, opts: opts,
		invFreq:  cfg.InvFrequencies(),
		execs:    map[any]*graph.Exec{},
		compiled: map[string]time.Duration{},
	}
}

// ChunkSize is the prefill chunk length.
func (e *Engine) ChunkSize() int { return e.opts.ChunkSize }

// Compilations reports how many distinct graphs were built and the total
// time of their first calls (compilation included), or of their
// compilation ahead, summed (those ran in parallel).
func (e *Engine) Compilations() (n int, total time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.compiled {
		total += d
	}
	return len(e.compiled), total
}

// timed runs an exec, recording the first call of each shape key.
func (e *Engine) timed(key string, exec *graph.Exec, args ...any) ([]*tensors.Tensor, error) {
	e.mu.Lock()
	_, seen := e.compiled[key]
	e.mu.Unlock()
	start := time.Now()
	out, err := exec.Exec(args...)
	if err != nil {
		return nil, err
	}
	if !seen {
		e.mu.Lock()
		e.compiled[key] = time.Since(start)
		e.mu.Unlock()
	}
	return out, nil
}

// layerKey identifies a layer graph: the statistics it returns and the
// kind of device state it updates ("" for none), and for a graph over a
// batch of sequences (forwardLayers) each sequence's, in order.
type layerKey struct {
	stats model.StatMask
	state string
	batch string // the kinds of the sequences after the first
}

// seqKind is what shapes one sequence's part of a layer graph: the
// statistics it returns and its policy's device state (nil for none).
type seqKind struct {
	stats model.StatMask
	state policy.DeviceState
}

func (k seqKind) key() layerKey {
	lk := layerKey{stats: k.stats}
	if k.state != nil {
		lk.state = k.state.StateKind()
	}
	return lk
}

// layerExec returns the layer graph of a batch of sequences of the given
// kinds (model.LayerBatch). Inputs, per sequence: x, cos, sin, qpos, qw,
// K, V, pos, [feat, ctl, writeAt,]; then the weights. Outputs, per
// sequence: x, newK, newV, stats..., [feat].
func (e *Engine) layerExec(kinds []seqKind) (*graph.Exec, error) {
	key := kinds[0].key()
	for _, k := range kinds[1:] {
		lk := k.key()
		key.batch += fmt.Sprintf("%d:%s;", lk.stats, lk.state)
	}
	cfg := e.Config
	return e.exec(key, 256, func(in []*graph.Node) []*graph.Node {
		sts := make([]model.LayerState, len(kinds))
		passes := make([]model.PassInputs, len(kinds))
		masks := make([]model.StatMask, len(kinds))
		p := in
		for i, k := range kinds {
			passes[i] = model.PassInputs{X: p[0], Cos: p[1], Sin: p[2], QueryPos: p[3], QueryWeights: p[4]}
			sts[i] = model.LayerState{K: p[5], V: p[6], Pos: p[7]}
			p = p[8:]
			if k.state != nil {
				sts[i].Feat, passes[i].StateCtl, passes[i].WriteAt = p[0], p[1], p[2]
				passes[i].UpdateState = k.state.UpdateState
				p = p[3:]
			}
			masks[i] = k.stats
		}
		w, _ := layerWeights(p, cfg.AttentionBias)
		var res []*graph.Node
		for _, out := range model.LayerBatch(cfg, w, sts, passes, masks) {
			res = append(res, out.X, out.NewK, out.NewV)
			res = append(res, out.Stats...)
			if out.Feat != nil {
				res = append(res, out.Feat)
			}
		}
		return res
	})
}

// stateKey keys a policy's state-update graph (host attention, hostattn.go).
type stateKey string

// stateExec returns the graph of a policy's device-state update alone.
// Inputs: rows [K, T, S+T] (zero for padding queries), state [K, S, W],
// ctl, writeAt; output: the new state.
func (e *Engine) stateExec(dev policy.DeviceState) (*graph.Exec, error) {
	return e.exec(stateKey(dev.StateKind()), 256, func(in []*graph.Node) []*graph.Node {
		return []*graph.Node{dev.UpdateState(in[0], in[1], in[2], in[3])}
	})
}

// exec returns the program memoised under key, building it with build on
// first use. maxCache bounds the shapes it keeps compiled (one graph per
// combination of input shapes).
func (e *Engine) exec(key any, maxCache int, build func([]*graph.Node) []*graph.Node) (*graph.Exec, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ex, ok := e.execs[key]; ok {
		return ex, nil
	}
	ex, err := graph.NewExecAny(e.Backend, build)
	if err != nil {
		return nil, err
	}
	ex.SetMaxCache(maxCache)
	e.execs[key] = ex
	return ex, nil
}

// execName keys the programs that have a single variant.
type execName string

// logitsKey keys the logits programs: of every row, or of the selected one.
type logitsKey struct{ all bool }

// layerWeights takes one layer's weight nodes from the front of p, in
// model.LayerTensors.List order, and returns the rest of p.
func layerWeights(p []*graph.Node, bias bool) (model.LayerWeights, []*graph.Node) {
	w := model.LayerWeights{AttnNorm: p[0], Wqkv: p[1]}
	p = p[2:]
	if bias {
		w.Bq, w.Bk, w.Bv = p[0], p[1], p[2]
		p = p[3:]
	}
	w.Wo, w.MLPNorm, w.Wgu, w.Wdown = p[0], p[1], p[2], p[3]
	return w, p[4:]
}

func (e *Engine) logitsExec(all bool) (*graph.Exec, error) {
	cfg := e.Config
	return e.exec(logitsKey{all}, 64, func(in []*graph.Node) []*graph.Node {
		var sel *graph.Node
		if !all {
			sel = in[3]
		}
		return []*graph.Node{model.Logits(cfg, in[0], in[1], in[2], sel)}
	})
}

func (e *Engine) gatherExec() (*graph.Exec, error) {
	return e.exec(execName("gather"), 256, func(in []*graph.Node) []*graph.Node {
		return model.GatherCache(in[0], in[1], in[2], in[3], in[4])
	})
}

func (e *Engine) featGatherExec() (*graph.Exec, error) {
	return e.exec(execName("gather-state"), 256, func(in []*graph.Node) []*graph.Node {
		return []*graph.Node{model.GatherFeat(in[0], in[1], in[2])}
	})
}

func (e *Engine) toDType(data []float32, dims ...int) *tensors.Tensor {
	if e.Weights.DType == dtypes.BFloat16 {
		return tensors.FromFlatDataAndDimensions(model.ToBF16(data), dims...)
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}
