package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Names of the files OpenDir looks for.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Set is the weights of one model: a single file or several shards.
type Set struct {
	Dir   string
	files map[string]*File // shard file name -> open file
	owner map[string]*File // tensor name -> file holding it
	names []string
}

// OpenDir opens dir/model.safetensors.index.json and every shard it lists, or,
// without an index, dir/model.safetensors. Every tensor of the index must be
// present in its shard.
func OpenDir(dir string) (*Set, error) {
	indexPath := filepath.Join(dir, IndexFileName)
	b, err := os.ReadFile(indexPath)
	if errors.Is(err, fs.ErrNotExist) {
		single := filepath.Join(dir, SingleFileName)
		if _, statErr := os.Stat(single); statErr != nil {
			return nil, fmt.Errorf("safetensors: %s: neither %s nor %s found", dir, IndexFileName, SingleFileName)
		}
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		s := &Set{Dir: dir, files: map[string]*File{SingleFileName: f}, owner: map[string]*File{}, names: f.Names()}
		for _, n := range s.names {
			s.owner[n] = f
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", indexPath, err)
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w: %v", indexPath, ErrInvalid, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: %w: missing or empty \"weight_map\"", indexPath, ErrInvalid)
	}
	s := &Set{Dir: dir, files: map[string]*File{}, owner: map[string]*File{}}
	for _, name := range sortedKeys(index.WeightMap) {
		shard := index.WeightMap[name]
		if shard == "" || filepath.Base(shard) != shard {
			s.Close()
			return nil, fmt.Errorf("safetensors: %s: %w: tensor %q maps to %q, not a file name in %s", indexPath, ErrInvalid, name, shard, dir)
		}
		f, ok := s.files[shard]
		if !ok {
			f, err = Open(filepath.Join(dir, shard))
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("safetensors: %s: shard %q of tensor %q: %w", indexPath, shard, name, err)
			}
			s.files[shard] = f
		}
		if _, ok := f.tensors[name]; !ok {
			s.Close()
			return nil, fmt.Errorf("safetensors: %s: %w: tensor %q is listed in shard %q but missing from it", indexPath, ErrInvalid, name, shard)
		}
		s.owner[name] = f
		s.names = append(s.names, name)
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Names lists all tensor names of the set, sorted.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Info describes the named tensor (offsets are relative to its own shard).
func (s *Set) Info(name string) (TensorInfo, bool) {
	f, ok := s.owner[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Info(name)
}

// Float32 returns the named tensor converted to float32, and its shape.
func (s *Set) Float32(name string) ([]float32, []int, error) {
	f, ok := s.owner[name]
	if !ok {
		return nil, nil, fmt.Errorf("safetensors: %s: no tensor %q", s.Dir, name)
	}
	return f.Float32(name)
}

// Raw returns a copy of the named tensor's bytes, its dtype and its shape.
func (s *Set) Raw(name string) ([]byte, DType, []int, error) {
	f, ok := s.owner[name]
	if !ok {
		return nil, "", nil, fmt.Errorf("safetensors: %s: no tensor %q", s.Dir, name)
	}
	b, err := f.Raw(name)
	if err != nil {
		return nil, "", nil, err
	}
	t := f.tensors[name]
	return b, t.DType, append([]int{}, t.Shape...), nil
}

// Metadata returns the metadata of the first shard (sorted by file name), or nil.
func (s *Set) Metadata() map[string]string {
	for _, k := range sortedKeys(s.files) {
		return s.files[k].Metadata
	}
	return nil
}

// Close closes every shard; it returns the first error.
func (s *Set) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
