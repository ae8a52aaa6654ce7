package main

import (
	"fmt"
	"os"

	"github.com/namm-dev/namm/defaultmodel"
	"github.com/namm-dev/namm/hub"
)

// resolveModel returns the model directory to load: the flag's directory, a
// Hugging Face id found in the local cache, or (no flag) the embedded
// default model (model A, extracted to the cache directory).
func resolveModel(flag string) (string, error) {
	if flag == "" {
		return defaultmodel.Dir()
	}
	if st, err := os.Stat(flag); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("--model %s: not a directory", flag)
		}
		return flag, nil
	}
	if hub.IsID(flag) {
		home, _ := os.UserHomeDir()
		return hub.Resolve(flag, hub.CacheDirs(os.Getenv, home))
	}
	return "", fmt.Errorf("--model %s: no such directory, and not a Hugging Face id (org/name)", flag)
}
