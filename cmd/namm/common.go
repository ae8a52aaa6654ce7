package main

import (
	"fmt"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/namm-dev/namm/defaultmodel"
	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/internal/modelid"
	"github.com/namm-dev/namm/internal/provenance"
	"github.com/namm-dev/namm/model"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/tokenizer"

	_ "github.com/namm-dev/namm/defaultnamm"
	_ "github.com/namm-dev/namm/namm" // registers the "namm" policy
)

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	model   string
	backend string
	chunk   int
	noFuse  bool
	ahead   bool
	dtype   string
	// prefix: Options.PrefixGraphs; on by default for commands that run
	// many prompts in one process (manyPrompts, set before register).
	prefix      bool
	manyPrompts bool
	// gpu: --gpu, where registerGPU added it (gpuGiven: it was given).
	gpu      int
	gpuGiven bool
}

// registerGPU adds --gpu, for the commands that run on one GPU of several.
func (m *modelFlags) registerGPU(cmd *cobra.Command) {
	cmd.Flags().IntVar(&m.gpu, "gpu", 0, "with --backend xla:PATH, run on this GPU only (its index, as nvidia-smi numbers them): sets CUDA_VISIBLE_DEVICES before the plugin loads (default: every GPU the process sees)")
}

// checkGPU refuses --gpu where it cannot pin the process: a negative index,
// or a backend other than xla. given: --gpu was on the command line.
func checkGPU(backend string, gpu int, given bool) error {
	if !given {
		return nil
	}
	if gpu < 0 {
		return fmt.Errorf("--gpu must be a GPU index >= 0, got %d", gpu)
	}
	if !strings.HasPrefix(backend, "xla") {
		return fmt.Errorf("--gpu %d needs --backend xla:PATH (the %q backend runs on the CPU)", gpu, backend)
	}
	return nil
}

// pinGPU makes --gpu the only GPU the CUDA runtime shows this process. It
// must run before the XLA plugin is loaded (engine.OpenBackend, in load):
// CUDA reads CUDA_VISIBLE_DEVICES once, when the plugin initialises it.
// It returns the device pinned ("" when --gpu was not given).
func (m *modelFlags) pinGPU() (string, error) {
	if err := checkGPU(m.backend, m.gpu, m.gpuGiven); err != nil || !m.gpuGiven {
		return "", err
	}
	dev := strconv.Itoa(m.gpu)
	if err := os.Setenv("CUDA_VISIBLE_DEVICES", dev); err != nil {
		return "", fmt.Errorf("--gpu %d: %w", m.gpu, err)
	}
	return dev, nil
}

func (m *modelFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&m.model, "model", "", "Hugging Face model directory (config.json, *.safetensors, tokenizer.json); default: the embedded model")
	cmd.Flags().StringVar(&m.backend, "backend", "go", "compute backend: go (pure Go) or xla:PATH/TO/pjrt_plugin.so (NVIDIA GPU; the plugin is never downloaded)")
	cmd.Flags().IntVar(&m.chunk, "chunk", 128, "prefill chunk size in tokens")
	cmd.Flags().BoolVar(&m.noFuse, "no-fuse", false, "on a GPU, run one graph per layer instead of one per pass (for comparison)")
	cmd.Flags().BoolVar(&m.ahead, "precompile", true, "on a GPU, compile a prompt's pass graphs (and the NAMM's scoring graphs) ahead, in parallel, while the first chunks run: a shorter wait for the first token (--precompile=false compiles each graph when first met; see docs/performance.md)")
	cmd.Flags().StringVar(&m.dtype, "dtype", "", "compute dtype: f32 or bf16 (default: f32 on go, bf16 on xla)")
	cmd.Flags().BoolVar(&m.prefix, "prefix-graphs", m.manyPrompts, "on a GPU, let passes attend only to the filled quarters of the cache: faster prefill, up to 3 more compiled graphs per pass shape (pays off over many prompts)")
}

// options are the engine options the flags select.
func (m *modelFlags) options(dt dtypes.DType) engine.Options {
	return engine.Options{Backend: m.backend, ChunkSize: m.chunk, DType: dt, NoFuse: m.noFuse, PrefixGraphs: m.prefix, Precompile: m.ahead}
}

// validate checks the flags that need no model.
func (m *modelFlags) validate() error {
	if m.chunk <= 0 {
		return fmt.Errorf("--chunk must be > 0 tokens, got %d", m.chunk)
	}
	if err := checkGPU(m.backend, m.gpu, m.gpuGiven); err != nil {
		return err
	}
	_, err := parseDType(m.dtype)
	return err
}

// load opens the model and its tokenizer.
func (m *modelFlags) load() (*engine.Engine, *tokenizer.Tokenizer, error) {
	if err := m.validate(); err != nil {
		return nil, nil, err
	}
	dir, err := resolveModel(m.model)
	if err != nil {
		return nil, nil, err
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	dt, err := parseDType(m.dtype)
	if err != nil {
		return nil, nil, err
	}
	if _, err := m.pinGPU(); err != nil {
		return nil, nil, err
	}
	e, err := engine.Load(dir, m.options(dt))
	if err != nil {
		return nil, nil, err
	}
	return e, tok, nil
}

// loadShape builds an engine of a named shape (model.ShapeNames) with
// random weights: speed measurements need no model files. The dtype is the
// flag's, else bfloat16 on a GPU and float32 on the CPU.
func (m *modelFlags) loadShape(shape string) (*engine.Engine, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	cfg, err := model.ShapeConfig(shape)
	if err != nil {
		return nil, err
	}
	dt, err := parseDType(m.dtype)
	if err != nil {
		return nil, err
	}
	if dt == dtypes.InvalidDType {
		dt = engine.DefaultDType(m.backend)
	}
	if _, err := m.pinGPU(); err != nil {
		return nil, err
	}
	b, err := engine.OpenBackend(m.backend)
	if err != nil {
		return nil, err
	}
	return engine.New(cfg, model.RandomWeights(cfg, dt, 1), b, m.options(dt)), nil
}

// modelID identifies the model the flags select by content: the embedded
// model as embedded:NAME, a directory by its absolute path.
func (m *modelFlags) modelID() (modelid.ID, error) {
	dir, err := resolveModel(m.model)
	if err != nil {
		return modelid.ID{}, err
	}
	if m.model == "" {
		return modelid.Embedded(defaultmodel.Name, dir)
	}
	return modelid.Of(dir)
}

// provenance is what results record of the model, the settings in effect
// and the build.
func (m *modelFlags) provenance(e *engine.Engine) (provenance.Run, error) {
	id, err := m.modelID()
	if err != nil {
		return provenance.Run{}, err
	}
	return provenance.Run{Model: id, Backend: m.backend, DType: e.Weights.DType.String(), Chunk: e.ChunkSize(), Namm: provenance.ReadBuild()}, nil
}

// memoryFlags select a memory policy and its budget.
type memoryFlags struct {
	memory string
	budget int
	ratio  float64
	layers string
}

func (f *memoryFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.memory, "memory", "full", "memory policy: "+strings.Join(policy.Names(), ", ")+" (options as name:key=value,...; namm alone is the shipped evolved NAMM, namm:PATH another NAMM file)")
	cmd.Flags().IntVar(&f.budget, "budget", 0, "KV tokens kept per head by budgeted policies")
	cmd.Flags().Float64Var(&f.ratio, "ratio", 0, "KV budget as a ratio of the tokens processed, in (0, 1]")
	cmd.Flags().StringVar(&f.layers, "layer-budgets", "", "comma-separated per-layer budgets (overrides --budget)")
}

func (f *memoryFlags) budgetSpec() (policy.Budget, error) {
	b := policy.Budget{Tokens: f.budget, Ratio: f.ratio}
	if f.budget < 0 {
		return b, fmt.Errorf("--budget must be > 0, got %d", f.budget)
	}
	if f.layers != "" {
		for _, s := range strings.Split(f.layers, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return b, fmt.Errorf("--layer-budgets: %q is not an integer", s)
			}
			b.PerLayer = append(b.PerLayer, n)
		}
	}
	return b, b.Validate()
}

// checkLayerBudgets refuses per-layer budgets that do not name each of the
// model's layers.
func checkLayerBudgets(layers int, budgets ...policy.Budget) error {
	for _, b := range budgets {
		if err := b.CheckLayers(layers); err != nil {
			return fmt.Errorf("--layer-budgets: %w", err)
		}
	}
	return nil
}

// mustBudget is budgetSpec for flags already validated by policy.
func (f *memoryFlags) mustBudget() policy.Budget {
	b, _ := f.budgetSpec()
	return b
}

func (f *memoryFlags) policy() (policy.Policy, error) {
	b, err := f.budgetSpec()
	if err != nil {
		return nil, err
	}
	return policy.New(f.memory, b)
}

// newSession starts a session with the tokenizer's facts for the policy.
func newSession(e *engine.Engine, tok *tokenizer.Tokenizer, p policy.Policy) (*engine.Session, error) {
	s, err := e.NewSession(p)
	if err != nil {
		return nil, err
	}
	if tok != nil {
		if err := s.SetModelInfo(tok.SpecialIDs(), tok.IsPunctuation); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func parseDType(s string) (dtypes.DType, error) {
	switch s {
	case "":
		return dtypes.InvalidDType, nil
	case "f32", "float32":
		return dtypes.Float32, nil
	case "bf16", "bfloat16":
		return dtypes.BFloat16, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("--dtype %q: valid values are f32, bf16", s)
}
