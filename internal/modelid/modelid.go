// Package modelid identifies a model directory by its content: the same
// files give the same identity wherever they are, and replacing the weights
// at the same path changes it. Results and checkpoints record it, so that a
// resumed run refuses results made with another model and accepts the same
// model moved elsewhere.
package modelid

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/safetensors"
)

// ID names a model and fingerprints its content.
type ID struct {
	// Name is the model as the user gave it: an absolute directory, or
	// "embedded:NAME" for the model built into the binary.
	Name string `json:"name"`
	// Hash is "sha256:" and the first 16 hex digits of SHA-256 over the
	// config, the tokenizer files and every weight file's bytes.
	Hash string `json:"hash"`
}

// String is "NAME@HASH".
func (id ID) String() string { return id.Name + "@" + id.Hash }

// hashedFiles are the non-weight files that change what a model computes.
var hashedFiles = []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}

// Of identifies the model in dir, named by its absolute path. Weight files
// are read in full once; their hashes are kept in the user's cache directory
// keyed by path, size and modification time, so later calls only stat them.
func Of(dir string) (ID, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ID{}, fmt.Errorf("model id: %w", err)
	}
	hash, err := contentHash(abs)
	if err != nil {
		return ID{}, err
	}
	return ID{Name: abs, Hash: hash}, nil
}

// Embedded identifies the model built into the binary, extracted to dir.
func Embedded(name, dir string) (ID, error) {
	hash, err := contentHash(dir)
	if err != nil {
		return ID{}, err
	}
	return ID{Name: "embedded:" + name, Hash: hash}, nil
}

func contentHash(dir string) (string, error) {
	h := sha256.New()
	for _, name := range hashedFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) && name != "config.json" {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("model id: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	weights, err := weightFiles(dir)
	if err != nil {
		return "", err
	}
	sort.Strings(weights)
	for _, w := range weights {
		sum, err := fileHash(w)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", filepath.Base(w), sum)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// weightFiles lists the files the loader reads weights from (the way
// safetensors.OpenDir finds them): the shards the index names, with the
// index itself, or the single model.safetensors.
func weightFiles(dir string) ([]string, error) {
	indexPath := filepath.Join(dir, safetensors.IndexFileName)
	data, err := os.ReadFile(indexPath)
	if os.IsNotExist(err) {
		single := filepath.Join(dir, safetensors.SingleFileName)
		if _, err := os.Stat(single); err != nil {
			return nil, fmt.Errorf("model id: %s: neither %s nor %s found", dir, safetensors.IndexFileName, safetensors.SingleFileName)
		}
		return []string{single}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("model id: %w", err)
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, fmt.Errorf("model id: %s: %w", indexPath, err)
	}
	files := []string{indexPath}
	seen := map[string]bool{}
	for _, shard := range index.WeightMap {
		if !seen[shard] {
			seen[shard] = true
			files = append(files, filepath.Join(dir, filepath.Base(shard)))
		}
	}
	return files, nil
}

// cacheEntry is a weight file's hash with the stat it was computed at.
type cacheEntry struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

var cacheMu sync.Mutex

// cachePath is $NAMM_CACHE_DIR/weight-hashes.json, or the user cache
// directory's namm/weight-hashes.json.
func cachePath() string {
	base := os.Getenv("NAMM_CACHE_DIR")
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		base = filepath.Join(c, "namm")
	}
	return filepath.Join(base, "weight-hashes.json")
}

// fileHash is the hex SHA-256 of a file, from the cache when its size and
// modification time are unchanged. The cache is best effort: a missing or
// unwritable one only costs a re-read.
func fileHash(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("model id: %w", err)
	}
	stat := cacheEntry{Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	cp := cachePath()
	cache := map[string]cacheEntry{}
	if cp != "" {
		if data, err := os.ReadFile(cp); err == nil {
			_ = json.Unmarshal(data, &cache) // a damaged cache is rebuilt
		}
	}
	if e, ok := cache[path]; ok && e.Size == stat.Size && e.ModTime == stat.ModTime && e.SHA256 != "" {
		return e.SHA256, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("model id: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("model id: read %s: %w", path, err)
	}
	stat.SHA256 = hex.EncodeToString(h.Sum(nil))
	if cp != "" {
		cache[path] = stat
		if data, err := json.MarshalIndent(cache, "", " "); err == nil && os.MkdirAll(filepath.Dir(cp), 0o755) == nil {
			_ = atomicfile.WriteFile(cp, data)
		}
	}
	return stat.SHA256, nil
}
