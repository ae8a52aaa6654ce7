package chat

import (
	"errors"
	"strings"
	"unicode"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// Python method names gonja implements; methods delegates to gonja's own for
// all but the ones it gets wrong.
var (
	strMethodNames = []string{"capitalize", "capwords", "casefold", "center", "count", "encode", "endswith",
		"expandtabs", "find", "format", "format_map", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
		"islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
		"partition", "removeprefix", "removesuffix", "rfind", "rjust", "rpartition", "rsplit", "split",
		"splitlines", "startswith", "swapcase", "title", "upper", "zfill"}
	dictMethodNames = []string{"get", "pop", "setdefault", "update", "copy", "clear"}
)

// methods are gonja's methods with Python's behaviour where gonja v2.9.1
// differs on what chat templates use: strip, lstrip and rstrip without an
// argument strip whitespace (gonja's lstrip and rstrip fail), replace takes an
// optional count (gonja requires it), and a dict's items, keys and values
// keep its order (gonja sorts the keys).
func methods() exec.Methods {
	str := map[string]exec.Method[string]{
		"strip":   stripMethod(strings.TrimFunc, strings.Trim),
		"lstrip":  stripMethod(strings.TrimLeftFunc, strings.TrimLeft),
		"rstrip":  stripMethod(strings.TrimRightFunc, strings.TrimRight),
		"replace": replaceMethod,
	}
	for _, name := range strMethodNames {
		if m, ok := builtins.Methods.Str.Get(name); ok {
			str[name] = m
		}
	}
	dict := map[string]exec.Method[map[string]any]{
		"items":  orderedDict(func(p *exec.Pair) any { return []any{p.Key.Interface(), p.Value.Interface()} }),
		"keys":   orderedDict(func(p *exec.Pair) any { return p.Key.Interface() }),
		"values": orderedDict(func(p *exec.Pair) any { return p.Value.Interface() }),
	}
	for _, name := range dictMethodNames {
		if m, ok := builtins.Methods.Dict.Get(name); ok {
			dict[name] = m
		}
	}
	m := builtins.Methods
	m.Str = exec.NewMethodSet(str)
	m.Dict = exec.NewMethodSet(dict)
	return m
}

func stripMethod(space func(string, func(rune) bool) string, chars func(string, string) string) exec.Method[string] {
	return func(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
		if len(args.Args) > 1 || len(args.KwArgs) > 0 {
			return nil, exec.ErrInvalidCall(errors.New("takes at most 1 positional argument"))
		}
		if len(args.Args) == 0 || args.Args[0].IsNil() {
			return space(self, unicode.IsSpace), nil
		}
		if !args.Args[0].IsString() {
			return nil, exec.ErrInvalidCall(errors.New("the argument must be a string or None"))
		}
		return chars(self, args.Args[0].String()), nil
	}
}

func replaceMethod(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
	if len(args.Args) < 2 || len(args.Args) > 3 || !args.Args[0].IsString() || !args.Args[1].IsString() {
		return nil, exec.ErrInvalidCall(errors.New("takes (old, new[, count]) with strings old and new"))
	}
	count := -1
	if len(args.Args) == 3 {
		if !args.Args[2].IsInteger() {
			return nil, exec.ErrInvalidCall(errors.New("count must be an integer"))
		}
		count = args.Args[2].Integer()
	}
	return strings.Replace(self, args.Args[0].String(), args.Args[1].String(), count), nil
}

// orderedDict lists an ordered dict's pairs in order; a plain Go map (no
// order to keep) by sorted keys, as gonja does.
func orderedDict(f func(*exec.Pair) any) exec.Method[map[string]any] {
	return func(self map[string]any, selfValue *exec.Value, args *exec.VarArgs) (any, error) {
		if len(args.Args) > 0 || len(args.KwArgs) > 0 {
			return nil, exec.ErrInvalidCall(errors.New("takes no arguments"))
		}
		var pairs []*exec.Pair
		switch d := selfValue.Interface().(type) {
		case *exec.Dict:
			pairs = d.Pairs
		case exec.Dict:
			pairs = d.Pairs
		default:
			for _, k := range selfValue.Keys() {
				pairs = append(pairs, &exec.Pair{Key: k, Value: exec.AsValue(self[k.String()])})
			}
		}
		out := make([]any, len(pairs))
		for i, p := range pairs {
			out[i] = f(p)
		}
		return out, nil
	}
}
