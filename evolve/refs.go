package evolve

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/namm-dev/namm/internal/atomicfile"
)

// RefScore is the full-cache result on one prompt.
type RefScore struct {
	Score  float64 `json:"score"`
	KVMean float64 `json:"kv_mean"`
}

// refFile is the on-disk cache of full-cache references (refs.json). The
// references depend on the model and the generation cap, so a file made with
// others is ignored.
type refFile struct {
	Model  string              `json:"model"`
	MaxNew int                 `json:"max_new"`
	Refs   map[string]RefScore `json:"refs"` // sample ID -> reference
}

// RefCache holds full-cache reference scores, computed once per prompt and
// kept in a JSON file written atomically.
type RefCache struct {
	path string
	mu   sync.Mutex
	f    refFile
}

// OpenRefCache reads path if it exists and matches model and maxNew; warn
// reports a file that is ignored.
func OpenRefCache(path, model string, maxNew int, warn func(string)) (*RefCache, error) {
	c := &RefCache{path: path, f: refFile{Model: model, MaxNew: maxNew, Refs: map[string]RefScore{}}}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reference cache: %w", err)
	}
	var f refFile
	if err := json.Unmarshal(data, &f); err != nil {
		warn(fmt.Sprintf("ignoring reference cache %s: %v", path, err))
		return c, nil
	}
	if f.Model != model || f.MaxNew != maxNew {
		warn(fmt.Sprintf("ignoring reference cache %s: made for model %s with max_new %d (now %s, %d)", path, f.Model, f.MaxNew, model, maxNew))
		return c, nil
	}
	if f.Refs != nil {
		c.f.Refs = f.Refs
	}
	return c, nil
}

// Get returns the reference of a sample ID.
func (c *RefCache) Get(id string) (RefScore, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.f.Refs[id]
	return r, ok
}

// Put records references and rewrites the file.
func (c *RefCache) Put(refs map[string]RefScore) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, r := range refs {
		c.f.Refs[id] = r
	}
	data, err := json.MarshalIndent(c.f, "", " ")
	if err != nil {
		return fmt.Errorf("reference cache: %w", err)
	}
	return atomicfile.WriteFile(c.path, data)
}
