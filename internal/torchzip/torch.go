// Package torchzip reads PyTorch checkpoints written by torch.save (the zip
// format of torch >= 1.6) without Python: it unpickles <prefix>/data.pkl,
// rebuilds tensors from the <prefix>/data/<key> storages and returns plain Go
// values.
//
// Only reading is supported, and only what checkpoints hold: containers,
// scalars, strings, OrderedDicts and tensors (float, integer and bool storages). Other
// classes come back as *Object (their name recorded) rather than failing.
package torchzip

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/namm-dev/namm/safetensors"
)

// Tensor is a tensor from a checkpoint. Its elements are copied into
// contiguous row-major order whatever the saved strides were.
type Tensor struct {
	DType         string // torch dtype name: float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool
	Shape         []int  // dims; empty for a scalar
	Stride        []int  // the saved strides into the storage, in elements (informational)
	StorageOffset int    // the saved offset into the storage, in elements (informational)
	Device        string // the saved location, e.g. "cpu" or "cuda:0"
	RequiresGrad  bool
	Float32       []float32 // every element, row-major; integers and bools converted
	Int64         []int64   // every element for integer and bool dtypes; nil for float dtypes
}

// NumElements is the product of Shape.
func (t *Tensor) NumElements() int { return len(t.Float32) }

// IsInteger reports whether the tensor holds integers or bools (Int64 is set).
func (t *Tensor) IsInteger() bool { return t.Int64 != nil }

// storageKind describes a torch storage class.
type storageKind struct {
	dtype string
	size  int
}

var storageKinds = map[string]storageKind{
	"FloatStorage":    {"float32", 4},
	"DoubleStorage":   {"float64", 8},
	"HalfStorage":     {"float16", 2},
	"BFloat16Storage": {"bfloat16", 2},
	"LongStorage":     {"int64", 8},
	"IntStorage":      {"int32", 4},
	"ShortStorage":    {"int16", 2},
	"CharStorage":     {"int8", 1},
	"ByteStorage":     {"uint8", 1},
	"BoolStorage":     {"bool", 1},
	"UntypedStorage":  {"uint8", 1}, // torch >= 2.0 saves untyped storages (numel = bytes) this way
}

// storage is a typed torch storage: numel elements of kind, little- or big-endian.
type storage struct {
	kind      storageKind
	class     string
	key       string
	location  string
	numel     int64
	data      []byte
	bigEndian bool
}

// Bounds on what a tensor may ask for.
const (
	maxDims = 64
	// maxBroadcastElements bounds tensors with more elements than their storage
	// (zero or overlapping strides), whose copy could otherwise be arbitrarily large.
	maxBroadcastElements = 1 << 24
	// maxCallDepth bounds nested _rebuild_from_type_v2 calls.
	maxCallDepth = 8
)

// torchLoader resolves persistent ids and known torch/python callables.
type torchLoader struct {
	// readStorage returns at least nbytes bytes of the storage with the given key.
	readStorage func(key string, nbytes int64) ([]byte, error)
	bigEndian   bool
	cache       map[string][]byte
	depth       int
}

// persistentLoad turns ('storage', storage_class, key, location, numel) into a storage.
func (l *torchLoader) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*pyTuple)
	if !ok || len(t.items) < 5 {
		return nil, fmt.Errorf("%w: persistent id %s is not a 5-tuple ('storage', type, key, location, numel)", ErrPickle, describe(pid))
	}
	if tag, _ := t.items[0].(string); tag != "storage" {
		return nil, fmt.Errorf("%w: persistent id tag %s, want 'storage'", ErrPickle, describe(t.items[0]))
	}
	g, ok := t.items[1].(*pyGlobal)
	if !ok {
		return nil, fmt.Errorf("%w: storage type is %s, not a class", ErrPickle, describe(t.items[1]))
	}
	kind, ok := storageKinds[g.name]
	if !ok || (g.module != "torch" && g.module != "torch.cuda") {
		return nil, fmt.Errorf("%w: unsupported storage type %s", ErrPickle, g)
	}
	key, ok1 := t.items[2].(string)
	location, ok2 := t.items[3].(string)
	numel, ok3 := t.items[4].(int64)
	if !ok1 || !ok2 || !ok3 || numel < 0 {
		return nil, fmt.Errorf("%w: storage persistent id (%s, %s, %s): want key string, location string, numel >= 0",
			ErrPickle, describe(t.items[2]), describe(t.items[3]), describe(t.items[4]))
	}
	if numel > math.MaxInt64/int64(kind.size) {
		return nil, fmt.Errorf("%w: storage %q: numel %d is too large", ErrPickle, key, numel)
	}
	nbytes := numel * int64(kind.size)
	data, ok := l.cache[key]
	if !ok || int64(len(data)) < nbytes {
		var err error
		if data, err = l.readStorage(key, nbytes); err != nil {
			return nil, err
		}
		if int64(len(data)) < nbytes {
			return nil, fmt.Errorf("storage %q: %d bytes, want %d (%d x %s)", key, len(data), nbytes, numel, kind.dtype)
		}
		l.cache[key] = data
	}
	return &storage{kind: kind, class: g.String(), key: key, location: location, numel: numel, data: data[:nbytes], bigEndian: l.bigEndian}, nil
}

// call applies a class or function reference: the torch rebuild functions and
// the few Python builtins checkpoints use; anything else becomes an opaque object.
func (l *torchLoader) call(fn *pyGlobal, args []any) (any, error) {
	switch fn.String() {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return rebuildTensor(args)
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(args) < 1 {
			return nil, fmt.Errorf("%w: %s without arguments", ErrPickle, fn)
		}
		t, ok := args[0].(*Tensor)
		if !ok {
			return nil, fmt.Errorf("%w: %s of %s, not a tensor", ErrPickle, fn, describe(args[0]))
		}
		if len(args) > 1 {
			t.RequiresGrad, _ = args[1].(bool)
		}
		return t, nil
	case "torch._tensor._rebuild_from_type_v2", "torch._tensor._rebuild_from_type":
		// (func, type, args, state): rebuild with func and ignore the subclass.
		if len(args) < 3 {
			return nil, fmt.Errorf("%w: %s needs (func, type, args, ...)", ErrPickle, fn)
		}
		inner, ok1 := args[0].(*pyGlobal)
		innerArgs, ok2 := args[2].(*pyTuple)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: %s: func %s, args %s", ErrPickle, fn, describe(args[0]), describe(args[2]))
		}
		if l.depth >= maxCallDepth {
			return nil, fmt.Errorf("%w: %s nested too deeply", ErrPickle, fn)
		}
		l.depth++
		defer func() { l.depth-- }()
		return l.call(inner, innerArgs.items)
	case "collections.OrderedDict", "collections.defaultdict":
		return &pyDict{}, nil // items follow via SETITEMS; defaultdict's factory is dropped
	case "builtins.set", "builtins.frozenset", "__builtin__.set", "__builtin__.frozenset":
		list := &pyList{}
		if len(args) > 0 {
			switch s := args[0].(type) {
			case *pyList:
				list.items = append(list.items, s.items...)
			case *pyTuple:
				list.items = append(list.items, s.items...)
			}
		}
		return list, nil
	case "_codecs.encode", "builtins.bytearray", "__builtin__.bytearray":
		// Python 3 pickles bytes at protocol 2 as _codecs.encode(latin1_text, 'latin1').
		if len(args) == 0 {
			return []byte{}, nil
		}
		switch s := args[0].(type) {
		case []byte:
			return s, nil
		case string:
			b := make([]byte, 0, len(s))
			for _, r := range s {
				if r > 0xff {
					return nil, fmt.Errorf("%w: %s: code point %U is not Latin-1", ErrPickle, fn, r)
				}
				b = append(b, byte(r))
			}
			return b, nil
		}
	case "copyreg._reconstructor", "copy_reg._reconstructor":
		if len(args) == 3 {
			if cls, ok := args[0].(*pyGlobal); ok {
				return &pyObject{class: cls.String(), args: args[2:]}, nil
			}
		}
	}
	return &pyObject{class: fn.String(), args: args}, nil
}

// rebuildTensor implements _rebuild_tensor_v2(storage, storage_offset, size,
// stride, requires_grad, backward_hooks[, metadata]): a strided view of the
// storage, copied to a contiguous tensor.
func rebuildTensor(args []any) (*Tensor, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("%w: tensor rebuild needs (storage, offset, size, stride), got %d arguments", ErrPickle, len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("%w: tensor storage is %s, not a torch storage", ErrPickle, describe(args[0]))
	}
	offset, ok := args[1].(int64)
	if !ok || offset < 0 {
		return nil, fmt.Errorf("%w: tensor storage_offset %s", ErrPickle, describe(args[1]))
	}
	shape, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(shape) != len(stride) {
		return nil, fmt.Errorf("%w: tensor size %v and stride %v differ in length", ErrPickle, shape, stride)
	}
	if len(shape) > maxDims {
		return nil, fmt.Errorf("%w: tensor has %d dims (limit %d)", ErrPickle, len(shape), maxDims)
	}
	// Count elements and the last storage index touched, without overflow.
	n, last := int64(1), offset
	for i := range shape {
		if shape[i] < 0 || stride[i] < 0 {
			return nil, fmt.Errorf("%w: tensor size %v / stride %v has a negative entry", ErrPickle, shape, stride)
		}
		if shape[i] != 0 && n > math.MaxInt32*2/shape[i] {
			return nil, fmt.Errorf("%w: tensor size %v is too large", ErrPickle, shape)
		}
		n *= shape[i]
	}
	if n > 0 {
		for i := range shape {
			if stride[i] != 0 && (shape[i]-1) > (math.MaxInt64-last)/stride[i] {
				return nil, fmt.Errorf("%w: tensor size %v stride %v overflows", ErrPickle, shape, stride)
			}
			last += (shape[i] - 1) * stride[i]
		}
		if last >= st.numel {
			return nil, fmt.Errorf("%w: tensor (offset %d, size %v, stride %v) reaches element %d of storage %q with %d elements",
				ErrPickle, offset, shape, stride, last, st.key, st.numel)
		}
		if n > st.numel && n > maxBroadcastElements {
			return nil, fmt.Errorf("%w: tensor of %d elements views storage %q of %d", ErrPickle, n, st.key, st.numel)
		}
	}
	t := &Tensor{
		DType: st.kind.dtype, Shape: toInts(shape), Stride: toInts(stride),
		StorageOffset: int(offset), Device: st.location,
	}
	if len(args) > 4 {
		t.RequiresGrad, _ = args[4].(bool)
	}
	fillTensor(t, st, offset, shape, stride, n)
	return t, nil
}

// fillTensor copies the strided view into t's contiguous slices.
func fillTensor(t *Tensor, st *storage, offset int64, shape, stride []int64, n int64) {
	t.Float32 = make([]float32, n)
	integer := st.kind.dtype != "float32" && st.kind.dtype != "float64" && st.kind.dtype != "float16" && st.kind.dtype != "bfloat16"
	if integer {
		t.Int64 = make([]int64, n)
	}
	if n == 0 {
		return
	}
	idx := make([]int64, len(shape))
	pos := offset
	for out := int64(0); out < n; out++ {
		if integer {
			v := st.int(pos)
			t.Int64[out] = v
			t.Float32[out] = float32(v)
		} else {
			t.Float32[out] = st.float(pos)
		}
		// Advance the multi-index, last dim fastest.
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			pos += stride[d]
			if idx[d] < shape[d] {
				break
			}
			pos -= idx[d] * stride[d]
			idx[d] = 0
		}
	}
}

// bytesAt returns the element at index i in little-endian byte order.
func (s *storage) bytesAt(i int64, buf *[8]byte) []byte {
	size := int64(s.kind.size)
	b := s.data[i*size : (i+1)*size]
	if !s.bigEndian {
		return b
	}
	for j := range b {
		buf[len(b)-1-j] = b[j]
	}
	return buf[:len(b)]
}

func (s *storage) float(i int64) float32 {
	var buf [8]byte
	b := s.bytesAt(i, &buf)
	switch s.kind.dtype {
	case "float32":
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	case "float64":
		return float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case "float16":
		return safetensors.F16ToFloat32(binary.LittleEndian.Uint16(b))
	default: // bfloat16
		return safetensors.BF16ToFloat32(binary.LittleEndian.Uint16(b))
	}
}

func (s *storage) int(i int64) int64 {
	var buf [8]byte
	b := s.bytesAt(i, &buf)
	switch s.kind.dtype {
	case "int64":
		return int64(binary.LittleEndian.Uint64(b))
	case "int32":
		return int64(int32(binary.LittleEndian.Uint32(b)))
	case "int16":
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case "int8":
		return int64(int8(b[0]))
	case "bool":
		if b[0] != 0 {
			return 1
		}
		return 0
	default: // uint8
		return int64(b[0])
	}
}

func intTuple(v any, what string) ([]int64, error) {
	var items []any
	switch t := v.(type) {
	case *pyTuple:
		items = t.items
	case *pyList:
		items = t.items
	default:
		return nil, fmt.Errorf("%w: tensor %s is %s, not a tuple", ErrPickle, what, describe(v))
	}
	out := make([]int64, len(items))
	for i, it := range items {
		x, ok := it.(int64)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s entry %d is %s, not an int", ErrPickle, what, i, describe(it))
		}
		out[i] = x
	}
	return out, nil
}

func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// describe names a value's type for error messages, in Python terms where possible.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "None"
	case string:
		return fmt.Sprintf("str %q", t)
	case int64, *big.Int:
		return fmt.Sprintf("int %v", t)
	case float64:
		return fmt.Sprintf("float %v", t)
	case bool:
		return fmt.Sprintf("bool %v", t)
	case *pyTuple:
		return fmt.Sprintf("tuple of %d", len(t.items))
	case *pyList:
		return fmt.Sprintf("list of %d", len(t.items))
	case *pyDict:
		return fmt.Sprintf("dict of %d", len(t.keys))
	case *pyGlobal:
		return "global " + t.String()
	case *pyObject:
		return "object " + t.class
	case *storage:
		return "storage " + t.class
	case *Tensor:
		return fmt.Sprintf("tensor %s%v", t.DType, t.Shape)
	}
	return fmt.Sprintf("%T", v)
}
