//go:build !noembedmodel

package defaultmodel

import "embed"

const embedded = true

//go:embed model-a/config.json model-a/generation_config.json model-a/model.safetensors
//go:embed model-a/tokenizer.json model-a/tokenizer_config.json model-a/train_summary.json
var files embed.FS
