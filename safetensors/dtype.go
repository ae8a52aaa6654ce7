// Package safetensors reads and writes the Hugging Face safetensors format.
//
// A file is: an 8-byte little-endian header length N, N bytes of a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data buffer. Offsets are relative to the start of the data buffer and
// tensor data is little-endian, row-major.
//
// Open maps a file read-only and validates its header completely before any
// tensor is read; OpenDir opens a model directory (one file or shards listed in
// model.safetensors.index.json); Write writes a file atomically.
package safetensors

import (
	"fmt"
	"math"
)

// DType is a safetensors element type, spelled as in the header ("F32", "BF16", ...).
type DType string

// The element types this package knows.
const (
	DTypeF64  DType = "F64"
	DTypeF32  DType = "F32"
	DTypeF16  DType = "F16"
	DTypeBF16 DType = "BF16"
	DTypeI64  DType = "I64"
	DTypeI32  DType = "I32"
	DTypeI16  DType = "I16"
	DTypeI8   DType = "I8"
	DTypeU64  DType = "U64"
	DTypeU32  DType = "U32"
	DTypeU16  DType = "U16"
	DTypeU8   DType = "U8"
	DTypeBool DType = "BOOL"
)

var dtypeSizes = map[DType]int{
	DTypeF64: 8, DTypeF32: 4, DTypeF16: 2, DTypeBF16: 2,
	DTypeI64: 8, DTypeI32: 4, DTypeI16: 2, DTypeI8: 1,
	DTypeU64: 8, DTypeU32: 4, DTypeU16: 2, DTypeU8: 1,
	DTypeBool: 1,
}

// Size is the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Valid reports whether d is a dtype this package knows.
func (d DType) Valid() bool { return d.Size() > 0 }

// IsFloat reports whether d is a floating-point dtype (convertible by Float32).
func (d DType) IsFloat() bool {
	return d == DTypeF64 || d == DTypeF32 || d == DTypeF16 || d == DTypeBF16
}

// numElements is the product of shape, with an error for negative dims or overflow.
func numElements(shape []int) (int64, error) {
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: dimension %d is negative", shape, i)
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("shape %v: element count overflows", shape)
		}
		n *= int64(d)
	}
	return n, nil
}
