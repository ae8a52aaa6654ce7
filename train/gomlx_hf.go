package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/namm-dev/namm/safetensors"
)

// WriteHFDir writes a Hugging Face model directory as
// scripts/gpu/train_base.py's write_hf_dir does, in float32:
// model.safetensors (lm_head.weight omitted when tied), config.json (the
// config's model section plus architectures, dtype and use_cache),
// generation_config.json, tokenizer.json (copied) and tokenizer_config.json
// (the tokenizer's, updated with the config's tokenizer_config).
func WriteHFDir(dir string, c *RunConfig, ps []Param, values [][]float32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	ts := make([]safetensors.Tensor, len(ps))
	for i, p := range ps {
		ts[i] = safetensors.F32(p.Name, p.Shape, values[i])
	}
	if err := safetensors.Write(filepath.Join(dir, safetensors.SingleFileName), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("write model: %w", err)
	}

	var cfg map[string]any
	if err := json.Unmarshal(c.ModelJSON, &cfg); err != nil {
		return fmt.Errorf("write model: %s: model: %w", c.Path, err)
	}
	cfg["architectures"] = []string{"LlamaForCausalLM"}
	cfg["dtype"] = "float32"
	delete(cfg, "torch_dtype")
	cfg["use_cache"] = true
	if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	gen := map[string]any{"_from_model_config": true}
	for _, k := range []string{"bos_token_id", "eos_token_id"} {
		if v, ok := cfg[k]; ok {
			gen[k] = v
		}
	}
	if v, ok := cfg["eos_token_id"]; ok {
		gen["pad_token_id"] = v
	}
	if err := writeJSON(filepath.Join(dir, "generation_config.json"), gen); err != nil {
		return err
	}

	tokDir := c.TokenizerDir()
	tj, err := os.ReadFile(filepath.Join(tokDir, "tokenizer.json"))
	if err != nil {
		return fmt.Errorf("write model: tokenizer: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "tokenizer.json"), tj); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	tc := map[string]any{}
	if b, err := os.ReadFile(filepath.Join(tokDir, "tokenizer_config.json")); err == nil {
		if err := json.Unmarshal(b, &tc); err != nil {
			return fmt.Errorf("write model: %s: %w", filepath.Join(tokDir, "tokenizer_config.json"), err)
		}
	}
	for k, v := range c.TokenizerConfig {
		tc[k] = v
	}
	return writeJSON(filepath.Join(dir, "tokenizer_config.json"), tc)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
