package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// DecodeJSON decodes JSON into values a template sees as Python would see
// json.loads' result: objects become ordered dicts (exec.Dict, keys in the
// order written, as Python's dict keeps them), arrays []any, numbers int or
// float64. Key order matters: templates print tools with tojson.
func DecodeJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := decodeValue(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil {
		return nil, fmt.Errorf("chat: trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			dict := exec.NewDict()
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(d)
				if err != nil {
					return nil, err
				}
				setKey(dict, k.(string), v)
			}
			_, err := d.Token()
			return dict, err
		case '[':
			list := []any{}
			for d.More() {
				v, err := decodeValue(d)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := d.Token()
			return list, err
		}
	case json.Number:
		if i, err := strconv.Atoi(string(t)); err == nil {
			return i, nil
		}
		return t.Float64()
	}
	return tok, nil // string, bool or nil
}

// setKey sets key in dict, replacing an earlier value as Python's json does.
func setKey(dict *exec.Dict, key string, v any) {
	for _, p := range dict.Pairs {
		if p.Key.String() == key {
			p.Value = exec.AsValue(v)
			return
		}
	}
	dict.Pairs = append(dict.Pairs, &exec.Pair{Key: exec.AsValue(key), Value: exec.AsValue(v)})
}

// pyJSON writes v as Python's json.dumps(v, ensure_ascii=False, indent=...)
// does, the way transformers' tojson filter calls it: ", " and ": "
// separators ("," between items when indenting), keys in dict order, no
// HTML escaping.
func pyJSON(b *strings.Builder, v any, indent int, depth int) error {
	newline := func(d int) {
		if indent > 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*d))
		}
	}
	itemSep := ", "
	if indent > 0 {
		itemSep = ","
	}
	switch x := v.(type) {
	case *exec.Value:
		if x == nil || x.IsNil() {
			b.WriteString("null")
			return nil
		}
		return pyJSON(b, x.Interface(), indent, depth)
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		writePyString(b, x)
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(pyFloat(x))
	case exec.Dict:
		return pyJSON(b, &x, indent, depth)
	case *exec.Dict:
		if len(x.Pairs) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, p := range x.Pairs {
			if i > 0 {
				b.WriteString(itemSep)
			}
			newline(depth + 1)
			key := p.Key.Interface()
			if s, ok := key.(string); ok {
				writePyString(b, s)
			} else {
				writePyString(b, p.Key.String())
			}
			b.WriteString(": ")
			if err := pyJSON(b, p.Value, indent, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte('}')
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(itemSep)
			}
			newline(depth + 1)
			if err := pyJSON(b, e, indent, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte(']')
	case exec.ValuesList:
		return pyJSON(b, []*exec.Value(x), indent, depth)
	case []*exec.Value:
		list := make([]any, len(x))
		for i, e := range x {
			list[i] = e
		}
		return pyJSON(b, list, indent, depth)
	case []string:
		list := make([]any, len(x))
		for i, e := range x {
			list[i] = e
		}
		return pyJSON(b, list, indent, depth)
	case map[string]any:
		// A Go map has no order: its keys sorted, as gonja iterates it.
		d := exec.NewDict()
		for _, k := range exec.AsValue(x).Keys() {
			d.Pairs = append(d.Pairs, &exec.Pair{Key: k, Value: exec.AsValue(x[k.String()])})
		}
		return pyJSON(b, d, indent, depth)
	case float32:
		return pyJSON(b, float64(x), indent, depth)
	case int32:
		return pyJSON(b, int(x), indent, depth)
	default:
		return fmt.Errorf("tojson: cannot encode a %T", v)
	}
	return nil
}

// writePyString quotes s as json.dumps(ensure_ascii=False) does: only '"',
// '\\' and control characters are escaped.
func writePyString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// pyFloat formats a float as Python's repr does (json.dumps uses it): the
// shortest digits that round-trip, fixed notation for exponents in [-4, 16),
// otherwise d.ddde+XX.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	if exp >= -4 && exp < 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	return fmt.Sprintf("%se%s%02d", mant, sign, exp)
}
