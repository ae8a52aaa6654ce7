package torchzip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits that keep a hostile data.pkl from exhausting memory or the stack.
const (
	// MaxPickleSize bounds data.pkl.
	MaxPickleSize = 256 << 20
	// maxDepth bounds the nesting of the unpickled object.
	maxDepth = 2000
	// maxBigIntBytes bounds LONG1/LONG4 integers.
	maxBigIntBytes = 1 << 10
)

// ErrPickle is wrapped by every error about a malformed or unsupported pickle.
var ErrPickle = errors.New("invalid pickle")

// Object is a pickled value of a class this package does not interpret: a bare
// class or function reference (only Class set), or an instance built by
// REDUCE/NEWOBJ (Args) and possibly BUILD (State), APPENDS (Items) or
// SETITEMS (Dict).
type Object struct {
	Class string // "module.name"
	Args  []any
	State any
	Items []any
	Dict  map[string]any
}

// Internal mutable containers: pickles fill lists and dicts after memoising
// them, so they live behind pointers until the final conversion.
type (
	pyList  struct{ items []any }
	pyTuple struct{ items []any }
	pyDict  struct {
		keys, values []any
	}
	pyGlobal struct{ module, name string }
	pyObject struct {
		class       string
		args        []any
		state       any
		items       []any
		keys, vals  []any
		hasDictPart bool
	}
)

func (g *pyGlobal) String() string { return g.module + "." + g.name }

// unpickler executes pickle opcodes (protocols 0-5, as far as torch checkpoints need).
type unpickler struct {
	data  []byte
	pos   int
	stack []any
	marks []int
	memo  map[uint64]any

	// persistentLoad resolves a persistent id (torch storages).
	persistentLoad func(pid any) (any, error)
	// call applies a class or function reference to its arguments (REDUCE, NEWOBJ).
	call func(fn *pyGlobal, args []any) (any, error)
}

func (u *unpickler) fail(op byte, format string, a ...any) error {
	return fmt.Errorf("%w: opcode %q at byte %d: %s", ErrPickle, op, u.pos, fmt.Sprintf(format, a...))
}

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, fmt.Errorf("%w: need %d bytes at byte %d, only %d left", ErrPickle, n, u.pos, len(u.data)-u.pos)
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) readLine() (string, error) {
	i := bytes.IndexByte(u.data[u.pos:], '\n')
	if i < 0 {
		return "", fmt.Errorf("%w: unterminated line at byte %d", ErrPickle, u.pos)
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) readUint(n int) (uint64, error) {
	b, err := u.read(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, fmt.Errorf("%w: stack underflow at byte %d", ErrPickle, u.pos)
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, fmt.Errorf("%w: stack underflow at byte %d", ErrPickle, u.pos)
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark pops everything above the last MARK.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, fmt.Errorf("%w: no MARK at byte %d", ErrPickle, u.pos)
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoGet(i uint64) error {
	v, ok := u.memo[i]
	if !ok {
		return fmt.Errorf("%w: memo key %d not found at byte %d", ErrPickle, i, u.pos)
	}
	u.push(v)
	return nil
}

func (u *unpickler) memoPut(i uint64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	u.memo[i] = v
	return nil
}

// run executes the pickle and returns the value left by STOP.
func (u *unpickler) run() (any, error) {
	u.memo = map[uint64]any{}
	for {
		if u.pos >= len(u.data) {
			return nil, fmt.Errorf("%w: ended at byte %d without STOP", ErrPickle, u.pos)
		}
		op := u.data[u.pos]
		u.pos++
		if op == '.' { // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		}
		if err := u.step(op); err != nil {
			return nil, err
		}
	}
}

func (u *unpickler) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		b, err := u.read(1)
		if err != nil {
			return err
		}
		if b[0] > 5 {
			return u.fail(op, "unsupported protocol %d", b[0])
		}
	case 0x95: // FRAME: only a hint for buffering
		_, err := u.read(8)
		return err
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		_, err := u.pop()
		return err
	case '1': // POP_MARK
		_, err := u.popMark()
		return err
	case '2': // DUP
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)

	// Constants and numbers.
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case 'J': // BININT
		v, err := u.readUint(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(uint32(v))))
	case 'K': // BININT1
		v, err := u.readUint(1)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case 'M': // BININT2
		v, err := u.readUint(2)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		size := 1
		if op == 0x8b {
			size = 4
		}
		n, err := u.readUint(size)
		if err != nil {
			return err
		}
		if n > maxBigIntBytes {
			return u.fail(op, "integer of %d bytes is too large", n)
		}
		b, err := u.read(int(n))
		if err != nil {
			return err
		}
		u.push(decodeLong(b))
	case 'G': // BINFLOAT, big-endian
		b, err := u.read(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'I', 'L', 'F': // INT, LONG, FLOAT (text)
		line, err := u.readLine()
		if err != nil {
			return err
		}
		v, err := parseTextNumber(op, line)
		if err != nil {
			return u.fail(op, "%v", err)
		}
		u.push(v)

	// Strings and bytes.
	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
		size := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8}[op]
		n, err := u.readUint(size)
		if err != nil {
			return err
		}
		if n > uint64(len(u.data)) {
			return u.fail(op, "string of %d bytes exceeds the pickle", n)
		}
		b, err := u.read(int(n))
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return u.fail(op, "string is not valid UTF-8")
		}
		u.push(string(b))
	case 'B', 'C', 0x8e, 'T', 'U', 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BINSTRING, SHORT_BINSTRING, BYTEARRAY8
		size := map[byte]int{'B': 4, 'C': 1, 0x8e: 8, 'T': 4, 'U': 1, 0x96: 8}[op]
		n, err := u.readUint(size)
		if err != nil {
			return err
		}
		if n > uint64(len(u.data)) {
			return u.fail(op, "bytes of %d exceed the pickle", n)
		}
		b, err := u.read(int(n))
		if err != nil {
			return err
		}
		if op == 'T' || op == 'U' {
			u.push(latin1(b)) // Python 2 str, decoded as torch.load does by default
		} else {
			u.push(append([]byte(nil), b...))
		}
	case 'S': // STRING (text, quoted)
		line, err := u.readLine()
		if err != nil {
			return err
		}
		s, err := strconv.Unquote(line)
		if err != nil && len(line) >= 2 && line[0] == '\'' && line[len(line)-1] == '\'' {
			s, err = strconv.Unquote(`"` + strings.ReplaceAll(line[1:len(line)-1], `"`, `\"`) + `"`)
		}
		if err != nil {
			return u.fail(op, "bad string literal %q", line)
		}
		u.push(s)
	case 'V': // UNICODE (raw-unicode-escape)
		line, err := u.readLine()
		if err != nil {
			return err
		}
		u.push(rawUnicodeEscape(line))

	// Containers.
	case ']':
		u.push(&pyList{})
	case ')':
		u.push(&pyTuple{})
	case '}':
		u.push(&pyDict{})
	case 0x8f: // EMPTY_SET (sets become lists)
		u.push(&pyList{})
	case 'l': // LIST
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyList{items: items})
	case 't', 0x91: // TUPLE, FROZENSET
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyTuple{items: items})
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op - 0x84)
		if len(u.stack) < n || (len(u.marks) > 0 && len(u.stack)-n < u.marks[len(u.marks)-1]) {
			return u.fail(op, "stack underflow")
		}
		items := append([]any(nil), u.stack[len(u.stack)-n:]...)
		u.stack = u.stack[:len(u.stack)-n]
		u.push(&pyTuple{items: items})
	case 'd': // DICT
		items, err := u.popMark()
		if err != nil {
			return err
		}
		d := &pyDict{}
		if err := setItems(d, items); err != nil {
			return u.fail(op, "%v", err)
		}
		u.push(d)
	case 'a': // APPEND
		v, err := u.pop()
		if err != nil {
			return err
		}
		return u.appendTo([]any{v}, op)
	case 'e', 0x90: // APPENDS, ADDITEMS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.appendTo(items, op)
	case 's': // SETITEM
		v, err := u.pop()
		if err != nil {
			return err
		}
		k, err := u.pop()
		if err != nil {
			return err
		}
		return u.setItemsOn([]any{k, v}, op)
	case 'u': // SETITEMS
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.setItemsOn(items, op)

	// Memo.
	case 'q', 0x94: // BINPUT, MEMOIZE
		if op == 0x94 {
			return u.memoPut(uint64(len(u.memo)))
		}
		i, err := u.readUint(1)
		if err != nil {
			return err
		}
		return u.memoPut(i)
	case 'r': // LONG_BINPUT
		i, err := u.readUint(4)
		if err != nil {
			return err
		}
		return u.memoPut(i)
	case 'h': // BINGET
		i, err := u.readUint(1)
		if err != nil {
			return err
		}
		return u.memoGet(i)
	case 'j': // LONG_BINGET
		i, err := u.readUint(4)
		if err != nil {
			return err
		}
		return u.memoGet(i)
	case 'p', 'g': // PUT, GET (text)
		line, err := u.readLine()
		if err != nil {
			return err
		}
		i, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			return u.fail(op, "bad memo index %q", line)
		}
		if op == 'p' {
			return u.memoPut(i)
		}
		return u.memoGet(i)

	// Classes, calls, objects.
	case 'c': // GLOBAL
		module, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		u.push(&pyGlobal{module, name})
	case 0x93: // STACK_GLOBAL
		name, err := u.pop()
		if err != nil {
			return err
		}
		module, err := u.pop()
		if err != nil {
			return err
		}
		ms, ok1 := module.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return u.fail(op, "module and name must be strings")
		}
		u.push(&pyGlobal{ms, ns})
	case 'R', 0x81, 0x92: // REDUCE, NEWOBJ, NEWOBJ_EX
		if op == 0x92 {
			if _, err := u.pop(); err != nil { // kwargs: ignored
				return err
			}
		}
		args, err := u.pop()
		if err != nil {
			return err
		}
		fn, err := u.pop()
		if err != nil {
			return err
		}
		g, ok := fn.(*pyGlobal)
		if !ok {
			return u.fail(op, "callable is %T, not a class or function reference", fn)
		}
		t, ok := args.(*pyTuple)
		if !ok {
			return u.fail(op, "arguments of %s are %T, not a tuple", g, args)
		}
		v, err := u.call(g, t.items)
		if err != nil {
			return fmt.Errorf("calling %s at byte %d: %w", g, u.pos, err)
		}
		u.push(v)
	case 'i', 'o': // INST, OBJ (protocol 0/1 instances)
		var g *pyGlobal
		var args []any
		if op == 'i' {
			module, err := u.readLine()
			if err != nil {
				return err
			}
			name, err := u.readLine()
			if err != nil {
				return err
			}
			g = &pyGlobal{module, name}
			if args, err = u.popMark(); err != nil {
				return err
			}
		} else {
			items, err := u.popMark()
			if err != nil {
				return err
			}
			if len(items) == 0 {
				return u.fail(op, "OBJ without a class")
			}
			var ok bool
			if g, ok = items[0].(*pyGlobal); !ok {
				return u.fail(op, "class is %T", items[0])
			}
			args = items[1:]
		}
		u.push(&pyObject{class: g.String(), args: args})
	case 'b': // BUILD
		state, err := u.pop()
		if err != nil {
			return err
		}
		obj, err := u.top()
		if err != nil {
			return err
		}
		if o, ok := obj.(*pyObject); ok {
			o.state = state
		}
		// Other targets (dicts, tensors) carry no state a checkpoint reader needs.
	case 'Q': // BINPERSID
		pid, err := u.pop()
		if err != nil {
			return err
		}
		v, err := u.persistentLoad(pid)
		if err != nil {
			return fmt.Errorf("persistent id at byte %d: %w", u.pos, err)
		}
		u.push(v)
	case 'P': // PERSID (text)
		line, err := u.readLine()
		if err != nil {
			return err
		}
		v, err := u.persistentLoad(line)
		if err != nil {
			return fmt.Errorf("persistent id at byte %d: %w", u.pos, err)
		}
		u.push(v)
	default:
		return u.fail(op, "unsupported opcode")
	}
	return nil
}

func (u *unpickler) appendTo(items []any, op byte) error {
	target, err := u.top()
	if err != nil {
		return err
	}
	switch t := target.(type) {
	case *pyList:
		t.items = append(t.items, items...)
	case *pyObject:
		t.items = append(t.items, items...)
	default:
		return u.fail(op, "cannot append to %T", target)
	}
	return nil
}

func (u *unpickler) setItemsOn(items []any, op byte) error {
	target, err := u.top()
	if err != nil {
		return err
	}
	var setErr error
	switch t := target.(type) {
	case *pyDict:
		setErr = setItems(t, items)
	case *pyObject:
		if len(items)%2 != 0 {
			setErr = fmt.Errorf("odd number of items (%d)", len(items))
			break
		}
		t.hasDictPart = true
		for i := 0; i < len(items); i += 2 {
			t.keys = append(t.keys, items[i])
			t.vals = append(t.vals, items[i+1])
		}
	default:
		setErr = fmt.Errorf("cannot set items on %T", target)
	}
	if setErr != nil {
		return u.fail(op, "%v", setErr)
	}
	return nil
}

func setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return fmt.Errorf("odd number of items (%d)", len(items))
	}
	for i := 0; i < len(items); i += 2 {
		d.keys = append(d.keys, items[i])
		d.values = append(d.values, items[i+1])
	}
	return nil
}

// decodeLong decodes a little-endian two's-complement integer: int64 when it fits, else *big.Int.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		return int64(v<<shift) >> shift // sign-extend
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

func parseTextNumber(op byte, line string) (any, error) {
	switch op {
	case 'F':
		return strconv.ParseFloat(line, 64)
	case 'I':
		switch line {
		case "00":
			return false, nil
		case "01":
			return true, nil
		}
	}
	line = strings.TrimSuffix(line, "L")
	if v, err := strconv.ParseInt(line, 10, 64); err == nil {
		return v, nil
	}
	if len(line) > 4*maxBigIntBytes {
		return nil, fmt.Errorf("integer literal too long")
	}
	v, ok := new(big.Int).SetString(line, 10)
	if !ok {
		return nil, fmt.Errorf("bad integer %q", line)
	}
	return v, nil
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// rawUnicodeEscape decodes Python's raw-unicode-escape: \uXXXX and \UXXXXXXXX
// escapes; every other byte is a Latin-1 code point.
func rawUnicodeEscape(s string) string {
	var out []rune
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n <= len(s) {
				if v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32); err == nil && v <= utf8.MaxRune {
					out = append(out, rune(v))
					i += 1 + n
					continue
				}
			}
		}
		out = append(out, rune(s[i]))
	}
	return string(out)
}
