package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/namm-dev/namm/internal/atomicfile"
	"math"
)

// Tensor is one tensor to write: little-endian, row-major bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// F32 builds an F32 tensor from data (len(data) must equal the shape's product).
func F32(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: DTypeF32, Shape: shape, Data: b}
}

// BF16 builds a BF16 tensor, rounding data to nearest-even as torch does.
func BF16(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 2*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint16(b[2*i:], Float32ToBF16(v))
	}
	return Tensor{Name: name, DType: DTypeBF16, Shape: shape, Data: b}
}

// F16 builds an F16 tensor, rounding data to nearest-even.
func F16(name string, shape []int, data []float32) Tensor {
	b := make([]byte, 2*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint16(b[2*i:], Float32ToF16(v))
	}
	return Tensor{Name: name, DType: DTypeF16, Shape: shape, Data: b}
}

// headerOut fixes the field order of a header entry to the reference library's.
type headerOut struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Encode serialises tensors (laid out in the given order) and metadata into
// safetensors bytes. The header is padded with spaces to a multiple of 8 bytes,
// as the reference library does, so the data buffer is 8-byte aligned.
func Encode(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	writeKey := func(k string) {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		hdr.Write(kb)
		hdr.WriteByte(':')
	}
	if len(metadata) > 0 {
		writeKey(metadataKey)
		mb, err := json.Marshal(metadata)
		if err != nil {
			return nil, fmt.Errorf("safetensors: encode metadata: %w", err)
		}
		hdr.Write(mb)
	}
	seen := map[string]bool{}
	var offset int64
	for _, t := range tensors {
		if t.Name == "" || t.Name == metadataKey {
			return nil, fmt.Errorf("safetensors: encode: invalid tensor name %q", t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("safetensors: encode: duplicate tensor %q", t.Name)
		}
		seen[t.Name] = true
		if !t.DType.Valid() {
			return nil, fmt.Errorf("safetensors: encode: tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n, err := numElements(t.Shape)
		if err != nil {
			return nil, fmt.Errorf("safetensors: encode: tensor %q: %w", t.Name, err)
		}
		if n*int64(t.DType.Size()) != int64(len(t.Data)) || n > int64(len(t.Data)) {
			return nil, fmt.Errorf("safetensors: encode: tensor %q: shape %v of %s needs %d elements, data has %d bytes",
				t.Name, t.Shape, t.DType, n, len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		writeKey(t.Name)
		eb, _ := json.Marshal(headerOut{t.DType, shape, [2]int64{offset, offset + int64(len(t.Data))}})
		hdr.Write(eb)
		offset += int64(len(t.Data))
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	out := make([]byte, 8, 8+int64(hdr.Len())+offset)
	binary.LittleEndian.PutUint64(out, uint64(hdr.Len()))
	out = append(out, hdr.Bytes()...)
	for _, t := range tensors {
		out = append(out, t.Data...)
	}
	return out, nil
}

// Write writes tensors and metadata to path atomically (a temporary file in the
// same directory, synced, then renamed over path).
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	b, err := Encode(tensors, metadata)
	if err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	return writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
