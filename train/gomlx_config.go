package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/namm-dev/namm/model"
)

// RunConfig is a training configuration file (configs/model-a.json layout):
// the model's Hugging Face config, the tokenizer directory, the extra
// tokenizer_config.json fields and the training hyper-parameters.
type RunConfig struct {
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	Tokenizer       string          `json:"tokenizer"` // directory with tokenizer.json (relative to the repository root or absolute)
	ModelJSON       json.RawMessage `json:"model"`
	TokenizerConfig map[string]any  `json:"tokenizer_config"`
	Train           TrainParams     `json:"train"`

	Model *model.Config `json:"-"` // parsed ModelJSON
	Path  string        `json:"-"`
}

// TrainParams are the "train" section. Fields the GoMLX trainer does not use
// (eval_*, compile) are accepted and ignored.
type TrainParams struct {
	Data            string     `json:"data"` // token file from namm train-data (the --data flag overrides)
	SeqLen          int        `json:"seq_len"`
	MicroBatchSize  int        `json:"micro_batch_size"`
	GradAccum       int        `json:"grad_accum"` // folded into one batch of micro_batch_size*grad_accum rows
	LR              float64    `json:"lr"`
	MinLRFrac       float64    `json:"min_lr_frac"`
	WarmupSteps     int        `json:"warmup_steps"`
	MaxSteps        int        `json:"max_steps"`
	WeightDecay     float64    `json:"weight_decay"`
	Betas           [2]float64 `json:"betas"`
	GradClip        float64    `json:"grad_clip"`
	LogEvery        int        `json:"log_every"`
	CheckpointEvery int        `json:"checkpoint_every"` // steps; 0: only checkpoint_minutes and the end
	CheckpointMins  float64    `json:"checkpoint_minutes"`
	Seed            uint64     `json:"seed"`
}

// BatchSize is the number of rows per optimizer step.
func (t TrainParams) BatchSize() int { return t.MicroBatchSize * max(1, t.GradAccum) }

// LoadRunConfig reads and checks a training configuration.
func LoadRunConfig(path string) (*RunConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train config: %w", err)
	}
	var c RunConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("train config %s: invalid JSON: %w", path, err)
	}
	c.Path = path
	if len(c.ModelJSON) == 0 {
		return nil, fmt.Errorf("train config %s: missing field model", path)
	}
	if c.Model, err = model.ParseConfig(c.ModelJSON, path+": model"); err != nil {
		return nil, err
	}
	if c.Model.AttentionBias || c.Model.SlidingWindow > 0 || c.Model.RopeScaling.Type != "" {
		return nil, fmt.Errorf("train config %s: model: the GoMLX trainer supports plain Llama (no attention_bias, sliding_window or rope_scaling)", path)
	}
	if c.Model.HiddenAct != "" && c.Model.HiddenAct != "silu" {
		return nil, fmt.Errorf("train config %s: model.hidden_act %q: only silu is supported", path, c.Model.HiddenAct)
	}
	if c.Tokenizer == "" {
		return nil, fmt.Errorf("train config %s: missing field tokenizer", path)
	}
	t := &c.Train
	if t.Betas == [2]float64{} {
		t.Betas = [2]float64{0.9, 0.95}
	}
	if t.LogEvery <= 0 {
		t.LogEvery = 10
	}
	checks := []struct {
		ok    bool
		field string
	}{
		{t.SeqLen >= 2, "seq_len (>= 2)"},
		{t.MicroBatchSize >= 1, "micro_batch_size (>= 1)"},
		{t.GradAccum >= 0, "grad_accum (>= 0)"},
		{t.LR > 0, "lr (> 0)"},
		{t.MinLRFrac >= 0 && t.MinLRFrac <= 1, "min_lr_frac (in [0, 1])"},
		{t.WarmupSteps >= 0, "warmup_steps (>= 0)"},
		{t.MaxSteps >= 1, "max_steps (>= 1)"},
		{t.WeightDecay >= 0, "weight_decay (>= 0)"},
		{t.Betas[0] >= 0 && t.Betas[0] < 1 && t.Betas[1] >= 0 && t.Betas[1] < 1, "betas (in [0, 1))"},
		{t.GradClip >= 0, "grad_clip (>= 0; 0 = off)"},
		{t.CheckpointEvery >= 0, "checkpoint_every (>= 0)"},
	}
	for _, ch := range checks {
		if !ch.ok {
			return nil, fmt.Errorf("train config %s: train.%s is missing or invalid", path, ch.field)
		}
	}
	return &c, nil
}

// TokenizerDir resolves the tokenizer directory: absolute, relative to the
// working directory, or relative to the directory above the config's folder
// (configs/ lives at the repository root).
func (c *RunConfig) TokenizerDir() string {
	if filepath.IsAbs(c.Tokenizer) {
		return c.Tokenizer
	}
	if _, err := os.Stat(c.Tokenizer); err == nil {
		return c.Tokenizer
	}
	return filepath.Join(filepath.Dir(filepath.Dir(c.Path)), c.Tokenizer)
}

// LRAt is the learning rate of optimizer step (0-based): linear warm-up to
// the peak over warmup steps, then a cosine to minFrac*peak at step planned
// (as scripts/gpu/train_base.py's lr_at).
func LRAt(step int, peak float64, warmup, planned int, minFrac float64) float64 {
	if step < warmup {
		return peak * float64(step+1) / float64(warmup)
	}
	t := min(1.0, float64(step-warmup)/float64(max(1, planned-warmup)))
	return peak * (minFrac + (1-minFrac)*0.5*(1+math.Cos(math.Pi*t)))
}
