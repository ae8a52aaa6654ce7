package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// MaxHeaderSize bounds the JSON header (the Rust reference uses the same 100 MB limit).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding string metadata.
const metadataKey = "__metadata__"

// ErrInvalid is wrapped by every validation error, so callers can test errors.Is(err, ErrInvalid).
var ErrInvalid = errors.New("invalid safetensors")

// TensorInfo describes one tensor of a file. Begin and End are byte offsets
// relative to the start of the data buffer; End-Begin = product(Shape) * DType.Size().
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements is the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n, _ := numElements(t.Shape)
	return n
}

type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int   `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// parseHeader parses and validates a JSON header against a data buffer of dataLen
// bytes. Tensors are returned sorted by name. Errors wrap ErrInvalid and name the
// tensor or field at fault (the caller adds the file name).
func parseHeader(header []byte, dataLen int64) (map[string]TensorInfo, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: header is not valid JSON: %v", ErrInvalid, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("%w: header is not a JSON object", ErrInvalid)
	}
	tensors := map[string]TensorInfo{}
	var metadata map[string]string
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: header is not valid JSON: %v", ErrInvalid, err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("%w: header: expected a key, got %v", ErrInvalid, tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%w: header: value of %q is not valid JSON: %v", ErrInvalid, name, err)
		}
		if name == metadataKey {
			if seenMeta {
				return nil, nil, fmt.Errorf("%w: header: duplicate %q", ErrInvalid, metadataKey)
			}
			seenMeta = true
			if err := json.Unmarshal(raw, &metadata); err != nil {
				return nil, nil, fmt.Errorf("%w: header: %s must map strings to strings: %v", ErrInvalid, metadataKey, err)
			}
			continue
		}
		if _, dup := tensors[name]; dup {
			return nil, nil, fmt.Errorf("%w: header: duplicate tensor %q", ErrInvalid, name)
		}
		info, err := parseEntry(name, raw, dataLen)
		if err != nil {
			return nil, nil, err
		}
		tensors[name] = info
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, fmt.Errorf("%w: header is not valid JSON: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: header: trailing data after the JSON object", ErrInvalid)
	}
	if err := checkOverlaps(tensors); err != nil {
		return nil, nil, err
	}
	return tensors, metadata, nil
}

func parseEntry(name string, raw json.RawMessage, dataLen int64) (TensorInfo, error) {
	var e headerEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: %v", ErrInvalid, name, err)
	}
	switch {
	case e.DType == nil:
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: missing field \"dtype\"", ErrInvalid, name)
	case e.Shape == nil:
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: missing field \"shape\"", ErrInvalid, name)
	case e.DataOffsets == nil:
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: missing field \"data_offsets\"", ErrInvalid, name)
	}
	info := TensorInfo{Name: name, DType: DType(*e.DType), Shape: *e.Shape}
	if info.Shape == nil {
		info.Shape = []int{}
	}
	if !info.DType.Valid() {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrInvalid, name, *e.DType)
	}
	n, err := numElements(info.Shape)
	if err != nil {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: %v", ErrInvalid, name, err)
	}
	offs := *e.DataOffsets
	if len(offs) != 2 {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: data_offsets must have 2 entries, has %d", ErrInvalid, name, len(offs))
	}
	info.Begin, info.End = offs[0], offs[1]
	switch {
	case info.Begin < 0 || info.End < 0:
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: negative data_offsets %v", ErrInvalid, name, offs)
	case info.Begin > info.End:
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: data_offsets begin %d > end %d", ErrInvalid, name, info.Begin, info.End)
	case info.End > dataLen:
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: data_offsets end %d beyond the data buffer (%d bytes; file truncated?)", ErrInvalid, name, info.End, dataLen)
	}
	size := int64(info.DType.Size())
	if n > (info.End-info.Begin)/size+1 || n*size != info.End-info.Begin {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q: shape %v of %s needs %d elements but data_offsets span %d bytes",
			ErrInvalid, name, info.Shape, info.DType, n, info.End-info.Begin)
	}
	return info, nil
}

// checkOverlaps rejects tensors whose byte ranges overlap (empty tensors never overlap).
func checkOverlaps(tensors map[string]TensorInfo) error {
	list := make([]TensorInfo, 0, len(tensors))
	for _, t := range tensors {
		if t.End > t.Begin {
			list = append(list, t)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Begin != list[j].Begin {
			return list[i].Begin < list[j].Begin
		}
		return list[i].Name < list[j].Name
	})
	for i := 1; i < len(list); i++ {
		if list[i].Begin < list[i-1].End {
			return fmt.Errorf("%w: tensors %q [%d,%d) and %q [%d,%d) overlap", ErrInvalid,
				list[i-1].Name, list[i-1].Begin, list[i-1].End, list[i].Name, list[i].Begin, list[i].End)
		}
	}
	return nil
}
