package torchzip

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path"
	"sort"
	"strings"
)

// Load reads a torch.save checkpoint (zip format) and returns the unpickled
// object as Go values:
//
//	dict, OrderedDict   map[string]any (non-string keys formatted with fmt.Sprint)
//	list, tuple, set    []any
//	str                 string
//	int                 int64 (*big.Int beyond 64 bits)
//	float               float64
//	bool, None          bool, nil
//	bytes               []byte
//	torch.Tensor        *Tensor
//	anything else       *Object
//
// Shared references in the pickle stay shared in the result.
func Load(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("torchzip: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("torchzip: %w", err)
	}
	v, err := LoadReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("torchzip: %s: %w", path, err)
	}
	return v, nil
}

// LoadReader is Load for a checkpoint held in r (size bytes). Its errors do not name a file.
func LoadReader(r io.ReaderAt, size int64) (any, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		var head [2]byte
		if _, rerr := r.ReadAt(head[:], 0); rerr == nil && head[0] == 0x80 && head[1] <= 5 {
			return nil, fmt.Errorf("a raw pickle (legacy torch.save format, before torch 1.6) is not supported; re-save it with a recent torch")
		}
		return nil, fmt.Errorf("not a torch zip checkpoint: %w", err)
	}
	var pkl *zip.File
	for _, zf := range zr.File {
		dir, base := path.Split(zf.Name)
		if base == "data.pkl" && dir != "" && strings.Count(dir, "/") == 1 {
			if pkl != nil {
				return nil, fmt.Errorf("two data.pkl entries: %s and %s", pkl.Name, zf.Name)
			}
			pkl = zf
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("no <prefix>/data.pkl entry in the zip (not a torch.save checkpoint?)")
	}
	prefix := path.Dir(pkl.Name)
	entries := map[string]*zip.File{}
	for _, zf := range zr.File {
		entries[zf.Name] = zf
	}
	data, err := readEntry(pkl, MaxPickleSize)
	if err != nil {
		return nil, err
	}
	bigEndian := false
	if bo, ok := entries[prefix+"/byteorder"]; ok {
		b, err := readEntry(bo, 16)
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(string(b)) {
		case "little":
		case "big":
			bigEndian = true
		default:
			return nil, fmt.Errorf("%s: unknown byte order %q", bo.Name, b)
		}
	}
	readStorage := func(key string, nbytes int64) ([]byte, error) {
		name := prefix + "/data/" + key
		zf, ok := entries[name]
		if !ok || strings.Contains(key, "/") {
			return nil, fmt.Errorf("storage %q: no entry %s in the zip", key, name)
		}
		if zf.UncompressedSize64 < uint64(nbytes) {
			return nil, fmt.Errorf("storage %q: entry %s has %d bytes, want %d", key, name, zf.UncompressedSize64, nbytes)
		}
		return readEntry(zf, nbytes)
	}
	obj, err := unpickle(data, readStorage, bigEndian)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	return obj, nil
}

// readEntry reads up to limit bytes of a zip entry; a longer data.pkl is an error,
// a longer storage is cut (only its first limit bytes are needed).
func readEntry(zf *zip.File, limit int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	if int64(len(b)) > limit {
		if path.Base(zf.Name) == "data.pkl" || path.Base(zf.Name) == "byteorder" {
			return nil, fmt.Errorf("%s: larger than %d bytes", zf.Name, limit)
		}
		b = b[:limit]
	}
	return b, nil
}

// unpickle runs a torch data.pkl and converts the result to plain Go values.
func unpickle(data []byte, readStorage func(key string, nbytes int64) ([]byte, error), bigEndian bool) (any, error) {
	if len(data) > MaxPickleSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrPickle, len(data), MaxPickleSize)
	}
	l := &torchLoader{readStorage: readStorage, bigEndian: bigEndian, cache: map[string][]byte{}}
	u := &unpickler{data: data, persistentLoad: l.persistentLoad, call: l.call}
	v, err := u.run()
	if err != nil {
		return nil, err
	}
	c := converter{done: map[any]any{}}
	return c.convert(v, 0)
}

// converter turns the unpickler's internal values into the documented Go
// values, converting each shared container once (so cycles and shared
// sub-trees cost no more than their size).
type converter struct{ done map[any]any }

func (c *converter) convert(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nesting deeper than %d", ErrPickle, maxDepth)
	}
	switch t := v.(type) {
	case *pyDict, *pyList, *pyTuple, *pyObject:
		if out, ok := c.done[t]; ok {
			return out, nil
		}
	}
	switch t := v.(type) {
	case *pyDict:
		m := make(map[string]any, len(t.keys))
		c.done[t] = m
		return m, c.fillMap(m, t.keys, t.values, depth)
	case *pyList:
		s := make([]any, len(t.items))
		c.done[t] = s
		return s, c.fillSlice(s, t.items, depth)
	case *pyTuple:
		s := make([]any, len(t.items))
		c.done[t] = s
		return s, c.fillSlice(s, t.items, depth)
	case *pyGlobal:
		return &Object{Class: t.String()}, nil
	case *pyObject:
		o := &Object{Class: t.class}
		c.done[t] = o
		var err error
		if t.args != nil {
			o.Args = make([]any, len(t.args))
			if err = c.fillSlice(o.Args, t.args, depth); err != nil {
				return nil, err
			}
		}
		if t.items != nil {
			o.Items = make([]any, len(t.items))
			if err = c.fillSlice(o.Items, t.items, depth); err != nil {
				return nil, err
			}
		}
		if t.hasDictPart {
			o.Dict = map[string]any{}
			if err = c.fillMap(o.Dict, t.keys, t.vals, depth); err != nil {
				return nil, err
			}
		}
		if o.State, err = c.convert(t.state, depth+1); err != nil {
			return nil, err
		}
		return o, nil
	case *storage:
		return &Object{Class: t.class, Args: []any{t.key, t.location, t.numel}}, nil
	}
	return v, nil // scalars, strings, []byte, *big.Int, *Tensor
}

func (c *converter) fillSlice(dst, src []any, depth int) error {
	for i, it := range src {
		v, err := c.convert(it, depth+1)
		if err != nil {
			return err
		}
		dst[i] = v
	}
	return nil
}

func (c *converter) fillMap(m map[string]any, keys, values []any, depth int) error {
	for i, k := range keys {
		kv, err := c.convert(k, depth+1)
		if err != nil {
			return err
		}
		v, err := c.convert(values[i], depth+1)
		if err != nil {
			return err
		}
		m[keyString(kv)] = v
	}
	return nil
}

func keyString(k any) string {
	switch t := k.(type) {
	case string:
		return t
	case nil:
		return "None"
	case bool:
		if t {
			return "True"
		}
		return "False"
	case *big.Int:
		return t.String()
	case *Object:
		return t.Class
	case []byte:
		return string(t)
	}
	return fmt.Sprint(k)
}

// ErrNotFound is wrapped by Lookup errors for a missing key or index.
var ErrNotFound = errors.New("not found")

// Lookup walks nested dicts (and lists, by decimal index) along path. A
// missing key's error names the path walked so far and the keys available.
func Lookup(obj any, path ...string) (any, error) {
	cur := obj
	for i, key := range path {
		where := "the top level"
		if i > 0 {
			where = strings.Join(path[:i], ".")
		}
		var m map[string]any
		switch t := cur.(type) {
		case map[string]any:
			m = t
		case *Object:
			if t.Dict == nil {
				return nil, fmt.Errorf("torchzip: %w: %s is an object of class %s, not a dict; cannot look up %q", ErrNotFound, where, t.Class, key)
			}
			m = t.Dict
		case []any:
			var idx int
			if _, err := fmt.Sscanf(key, "%d", &idx); err != nil || idx < 0 || idx >= len(t) || fmt.Sprint(idx) != key {
				return nil, fmt.Errorf("torchzip: %w: %s is a list of %d; %q is not an index in it", ErrNotFound, where, len(t), key)
			}
			cur = t[idx]
			continue
		default:
			return nil, fmt.Errorf("torchzip: %w: %s is %s, not a dict; cannot look up %q", ErrNotFound, where, describeValue(cur), key)
		}
		v, ok := m[key]
		if !ok {
			return nil, fmt.Errorf("torchzip: %w: key %q under %s; available keys: %s", ErrNotFound, key, where, keyList(m))
		}
		cur = v
	}
	return cur, nil
}

// LookupTensor is Lookup for a value that must be a tensor.
func LookupTensor(obj any, path ...string) (*Tensor, error) {
	v, err := Lookup(obj, path...)
	if err != nil {
		return nil, err
	}
	t, ok := v.(*Tensor)
	if !ok {
		return nil, fmt.Errorf("torchzip: %s is %s, not a tensor", strings.Join(path, "."), describeValue(v))
	}
	return t, nil
}

// Find returns the paths of every dict entry, at any depth, whose key is name
// or ends with "."+name (state_dict keys such as "policy.buffer"), in sorted order.
func Find(obj any, name string) [][]string {
	var found [][]string
	seen := map[any]bool{}
	var walk func(v any, path []string, depth int)
	walk = func(v any, path []string, depth int) {
		if depth > maxDepth {
			return
		}
		var m map[string]any
		switch t := v.(type) {
		case map[string]any:
			m = t
		case *Object:
			m = t.Dict
		case []any:
			if len(t) > 0 {
				if seen[&t[0]] {
					return
				}
				seen[&t[0]] = true
			}
			for i, it := range t {
				walk(it, append(path[:len(path):len(path)], fmt.Sprint(i)), depth+1)
			}
			return
		}
		if m == nil {
			return
		}
		id := fmt.Sprintf("%p", m)
		if seen[id] {
			return
		}
		seen[id] = true
		for _, k := range sortedKeys(m) {
			p := append(path[:len(path):len(path)], k)
			if k == name || strings.HasSuffix(k, "."+name) {
				found = append(found, p)
			}
			walk(m[k], p, depth+1)
		}
	}
	walk(obj, nil, 0)
	return found
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func keyList(m map[string]any) string {
	keys := sortedKeys(m)
	const show = 40
	var b bytes.Buffer
	for i, k := range keys {
		if i == show {
			fmt.Fprintf(&b, ", ... (%d more)", len(keys)-show)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", k)
	}
	if len(keys) == 0 {
		return "none (empty dict)"
	}
	return b.String()
}

func describeValue(v any) string {
	switch t := v.(type) {
	case map[string]any:
		return fmt.Sprintf("a dict of %d", len(t))
	case []any:
		return fmt.Sprintf("a list of %d", len(t))
	case *Tensor:
		return fmt.Sprintf("a %s tensor of shape %v", t.DType, t.Shape)
	case *Object:
		return "an object of class " + t.Class
	case nil:
		return "None"
	}
	return fmt.Sprintf("%T %v", v, v)
}
