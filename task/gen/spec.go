package gen

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/namm-dev/namm/task/gen/haystack"
)

// Spec asks for N samples of one task at Length tokens. Options are task-specific
// (see TaskInfo.Options); a missing option takes its default.
type Spec struct {
	Task    string
	Length  int   // target prompt length in tokens
	N       int   // number of samples
	Seed    int64 // different seeds give different samples
	Options map[string]string
	// Slack is the shortfall from Length accepted as a fraction of it, in [0, 0.1] (0 means
	// the default 1%). Training data, which needs no exact lengths, uses more to save
	// tokenizations. It is not part of the spec's string.
	Slack float64
}

// Defaults of ParseSpec.
const (
	DefaultLength = 4096
	DefaultN      = 10
	DefaultSeed   = 1
)

// ParseSpec reads "task[:len=L][:n=N][:seed=S][:key=value...]", for example
// "niah_multikey:len=8192:n=50:seed=1:haystack=needle". Missing len, n and seed take
// DefaultLength, DefaultN and DefaultSeed.
func ParseSpec(s string) (Spec, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	spec := Spec{Task: parts[0], Length: DefaultLength, N: DefaultN, Seed: DefaultSeed}
	if _, ok := registry[spec.Task]; !ok {
		return Spec{}, fmt.Errorf("task spec %q: unknown task %q (valid tasks: %s)",
			s, spec.Task, strings.Join(taskNames(), ", "))
	}
	for _, p := range parts[1:] {
		key, val, ok := strings.Cut(p, "=")
		if !ok || key == "" {
			return Spec{}, fmt.Errorf("task spec %q: field %q is not key=value", s, p)
		}
		var err error
		switch key {
		case "len":
			spec.Length, err = strconv.Atoi(val)
		case "n":
			spec.N, err = strconv.Atoi(val)
		case "seed":
			spec.Seed, err = strconv.ParseInt(val, 10, 64)
		default:
			if spec.Options == nil {
				spec.Options = map[string]string{}
			}
			if _, dup := spec.Options[key]; dup {
				return Spec{}, fmt.Errorf("task spec %q: option %q given twice", s, key)
			}
			spec.Options[key] = val
		}
		if err != nil {
			return Spec{}, fmt.Errorf("task spec %q: field %s: %w", s, key, err)
		}
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, fmt.Errorf("task spec %q: %w", s, err)
	}
	return spec, nil
}

// String is the canonical form that ParseSpec reads back: options sorted, defaults omitted.
func (s Spec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:len=%d:n=%d:seed=%d", s.Task, s.Length, s.N, s.Seed)
	keys := make([]string, 0, len(s.Options))
	for k := range s.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, ":%s=%s", k, s.Options[k])
	}
	return b.String()
}

// MaxLength bounds Spec.Length (tokens).
const MaxLength = 1 << 20

// Validate checks the task name, numbers and every option against the task's options.
func (s Spec) Validate() error {
	t, ok := registry[s.Task]
	if !ok {
		return fmt.Errorf("unknown task %q (valid tasks: %s)", s.Task, strings.Join(taskNames(), ", "))
	}
	if s.Length < 16 || s.Length > MaxLength {
		return fmt.Errorf("len=%d out of range [16, %d]", s.Length, MaxLength)
	}
	if s.N < 1 || s.N > 1_000_000 {
		return fmt.Errorf("n=%d out of range [1, 1000000]", s.N)
	}
	for k, v := range s.Options {
		o, ok := findOption(t, k)
		if !ok {
			var keys []string
			for _, o := range t.opts {
				keys = append(keys, o.Key)
			}
			return fmt.Errorf("task %s has no option %q (valid: len, n, seed, %s)", s.Task, k, strings.Join(keys, ", "))
		}
		if err := o.check(v); err != nil {
			return fmt.Errorf("option %s=%q: %w", k, v, err)
		}
	}
	return nil
}

// option returns the value of an option, or its default.
func (s Spec) option(key string) string {
	if v, ok := s.Options[key]; ok {
		return v
	}
	if o, ok := findOption(registry[s.Task], key); ok {
		return o.Default
	}
	return ""
}

// intOption returns an integer option (validated by Validate), or def when it is unset and
// has no fixed default.
func (s Spec) intOption(key string, def int) int {
	v := s.option(key)
	if v == "" {
		return def
	}
	n, _ := strconv.Atoi(v)
	return n
}

func (s Spec) floatOption(key string) float64 {
	f, _ := strconv.ParseFloat(s.option(key), 64)
	return f
}

// opt is an option with its validation.
type opt struct {
	OptionInfo
	check func(string) error
}

func findOption(t *task, key string) (opt, bool) {
	for _, o := range t.opts {
		if o.Key == key {
			return o, true
		}
	}
	return opt{}, false
}

func enumOpt(key, def, help string, values ...string) opt {
	return opt{OptionInfo{key, def, help + " (" + strings.Join(values, "|") + ")"}, func(v string) error {
		for _, x := range values {
			if v == x {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(values, ", "))
	}}
}

func intOpt(key, def, help string, lo, hi int) opt {
	return opt{OptionInfo{key, def, help}, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("out of range [%d, %d]", lo, hi)
		}
		return nil
	}}
}

func floatOpt(key, def, help string, lo, hi float64) opt {
	return opt{OptionInfo{key, def, help}, func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		if !(f > lo && f <= hi) {
			return fmt.Errorf("out of range (%g, %g]", lo, hi)
		}
		return nil
	}}
}

// textOpts are the options of every task that reads haystack text.
func textOpts() []opt {
	return []opt{
		enumOpt("split", haystack.Eval, "haystack split: eval (held out from LM training) or train", haystack.Eval, haystack.Train),
		{OptionInfo{"texts", "", "haystack texts joined by +, e.g. austen-emma+sotu (default: all)"}, func(v string) error {
			for _, name := range strings.Split(v, "+") {
				if _, err := haystack.Get(name); err != nil {
					return err
				}
			}
			return nil
		}},
	}
}
