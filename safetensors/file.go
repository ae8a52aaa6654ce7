package safetensors

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
)

// File is an open safetensors file whose header has been validated. Its data is
// memory-mapped read-only (or read into memory where mmap is unavailable).
// A File is safe for concurrent reads; Close invalidates views returned by View.
type File struct {
	Path     string
	Metadata map[string]string // the "__metadata__" entry, nil if absent

	tensors map[string]TensorInfo
	names   []string

	mu      sync.RWMutex
	mapping []byte // the whole file; nil after Close
	data    []byte // the data buffer within mapping
	unmap   func() error
}

// Open reads and validates the header of the safetensors file at path and maps its data.
func Open(path string) (*File, error) {
	mapping, unmap, err := mapFile(path)
	if err != nil {
		if _, named := err.(*fs.PathError); named {
			return nil, fmt.Errorf("safetensors: %w", err) // "open PATH: ..."
		}
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	f, err := newFile(path, mapping)
	if err != nil {
		unmap()
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	f.unmap = unmap
	return f, nil
}

// newFile validates the bytes of a whole file.
func newFile(path string, b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: file is %d bytes, shorter than the 8-byte header length", ErrInvalid, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header length %d exceeds the %d-byte limit", ErrInvalid, n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: header length %d is larger than the file (%d bytes after the length; truncated?)", ErrInvalid, n, len(b)-8)
	}
	data := b[8+n:]
	tensors, metadata, err := parseHeader(b[8:8+n], int64(len(data)))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	return &File{Path: path, Metadata: metadata, tensors: tensors, names: names, mapping: b, data: data}, nil
}

// Names lists the tensor names, sorted.
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Info describes the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	t, ok := f.tensors[name]
	t.Shape = append([]int{}, t.Shape...)
	return t, ok
}

// View returns the named tensor's bytes without copying. The slice aliases the
// read-only mapping: it must not be written, and must not be used after Close.
func (f *File) View(name string) ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.viewLocked(name)
}

// Raw returns a copy of the named tensor's little-endian bytes.
func (f *File) Raw(name string) ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, err := f.viewLocked(name)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), v...), nil
}

// Float32 returns the named tensor converted to float32 (from F32, F64, F16 or
// BF16; other dtypes are an error) and its shape.
func (f *File) Float32(name string) ([]float32, []int, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, err := f.viewLocked(name)
	if err != nil {
		return nil, nil, err
	}
	t := f.tensors[name]
	out, err := decodeFloat32(t.DType, v)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %s: tensor %q: %w", f.Path, name, err)
	}
	return out, append([]int{}, t.Shape...), nil
}

func (f *File) viewLocked(name string) ([]byte, error) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: no tensor %q", f.Path, name)
	}
	if f.mapping == nil {
		return nil, fmt.Errorf("safetensors: %s: file is closed", f.Path)
	}
	return f.data[t.Begin:t.End:t.End], nil
}

// Close releases the mapping. It is safe to call more than once.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mapping == nil {
		return nil
	}
	f.mapping, f.data = nil, nil
	if f.unmap != nil {
		if err := f.unmap(); err != nil {
			return fmt.Errorf("safetensors: close %s: %w", f.Path, err)
		}
	}
	return nil
}

// readWhole is the portable fallback of mapFile.
func readWhole(path string) ([]byte, func() error, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return nil }, nil
}
