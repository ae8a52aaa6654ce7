package engine

import (
	"reflect"
	"unsafe"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// In-place cache updates on XLA.
//
// The fused pass donates the cache buffers and writes the pass's keys and
// values into them with a DynamicUpdateSlice. Donation alone only lets the
// runtime free an input early: unless the compiled program says that an
// input and an output share one buffer, XLA copies every donated cache
// buffer before writing into it (K, V, positions and policy state of every
// layer, on every pass: 1.3 GiB per decoded token for Llama-3-8B at 8k). The
// StableHLO argument attribute tf.aliasing_output (JAX writes it for
// donate_argnums) tells XLA that parameter i and output j are one buffer.
//
// GoMLX v0.26 has no API for argument attributes; its XLA backend keeps the
// parameter's StableHLO value, whose Attributes map is exported, in an
// unexported field. aliasOutput reaches it by reflection. When the layout is
// not the expected one (another backend, another GoMLX version) it does
// nothing and reports false: the program is then correct, only slower.

// aliasOutput marks graph parameter param as sharing its buffer with output
// number out of the computation. It reports whether the mark was set.
func aliasOutput(param *graph.Node, out int) bool {
	attrs, ok := stableHLOAttributes(param)
	if !ok {
		return false
	}
	if attrs.IsNil() {
		attrs.Set(reflect.ValueOf(map[string]any{}))
	}
	attrs.SetMapIndex(reflect.ValueOf("tf.aliasing_output"), reflect.ValueOf(int32(out)))
	return true
}

// stableHLOAttributes returns the settable Attributes map of the StableHLO
// value behind a graph node on the XLA backend: graph.Node.outputOps[0] is
// an *xla.Node whose field value is a *stablehlo.Value.
func stableHLOAttributes(n *graph.Node) (reflect.Value, bool) {
	ops := field(reflect.ValueOf(n).Elem(), "outputOps")
	if !ops.IsValid() || ops.Kind() != reflect.Slice || ops.Len() != 1 {
		return reflect.Value{}, false
	}
	op := ops.Index(0)
	if op.Kind() == reflect.Interface {
		op = op.Elem()
	}
	if op.Kind() != reflect.Pointer || op.IsNil() || op.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	if op.Elem().Type().PkgPath() != "github.com/gomlx/gomlx/backends/xla" {
		return reflect.Value{}, false
	}
	v := field(op.Elem(), "value")
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	attrs := v.Elem().FieldByName("Attributes")
	if !attrs.IsValid() || attrs.Type() != reflect.TypeOf(map[string]any(nil)) || !attrs.CanSet() {
		return reflect.Value{}, false
	}
	return attrs, true
}

// field returns struct field name of s (addressable), made readable and
// settable even when unexported, or the zero Value.
func field(s reflect.Value, name string) reflect.Value {
	f := s.FieldByName(name)
	if !f.IsValid() || !f.CanAddr() {
		return reflect.Value{}
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}
