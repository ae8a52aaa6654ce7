// Package defaultmodel ships model A, the project's own small Llama-style
// base model (see docs/models.md), inside the binary, so that namm runs on a
// fresh machine with no download. The files are written once to the user's
// cache directory, because the engine reads (memory-maps) a model directory.
package defaultmodel

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Name of the embedded model.
const Name = "model-a"

var (
	once   sync.Once
	dir    string
	dirErr error
)

// Dir returns a directory holding the embedded model, extracting it on first
// use to $XDG_CACHE_HOME/namm/model-a-HASH (or $NAMM_CACHE_DIR). Extraction
// is atomic: a half-written copy is never used.
func Dir() (string, error) {
	once.Do(func() { dir, dirErr = extract() })
	return dir, dirErr
}

func extract() (string, error) {
	if !embedded {
		return "", fmt.Errorf("this binary was built with -tags noembedmodel: give --model DIR")
	}
	entries, err := fs.ReadDir(files, Name)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, e := range entries {
		data, _ := files.ReadFile(Name + "/" + e.Name())
		h.Write([]byte(e.Name()))
		h.Write(data)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	base := os.Getenv("NAMM_CACHE_DIR")
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		base = filepath.Join(c, "namm")
	}
	target := filepath.Join(base, Name+"-"+sum)
	if _, err := os.Stat(filepath.Join(target, "config.json")); err == nil {
		return target, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("defaultmodel: %w", err)
	}
	tmp, err := os.MkdirTemp(base, ".extract-")
	if err != nil {
		return "", fmt.Errorf("defaultmodel: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, e := range entries {
		data, err := files.ReadFile(Name + "/" + e.Name())
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), data, 0o644); err != nil {
			return "", fmt.Errorf("defaultmodel: %w", err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		// Another process may have extracted it first.
		if _, statErr := os.Stat(filepath.Join(target, "config.json")); statErr == nil {
			return target, nil
		}
		return "", fmt.Errorf("defaultmodel: %w", err)
	}
	return target, nil
}
