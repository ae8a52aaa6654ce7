package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Budget is the cache size a budgeted policy keeps: a token count, a ratio of
// the current length, or a count per layer. The zero Budget means "none given".
type Budget struct {
	Tokens   int     // keep at most this many tokens per head
	Ratio    float64 // keep at most ceil(Ratio * current length), in (0, 1]
	PerLayer []int   // overrides Tokens per layer when non-empty
}

// IsZero reports whether no budget was given.
func (b Budget) IsZero() bool { return b.Tokens == 0 && b.Ratio == 0 && len(b.PerLayer) == 0 }

// Validate checks the budget's values.
func (b Budget) Validate() error {
	if b.Tokens < 0 {
		return fmt.Errorf("%w: budget must be > 0 tokens, got %d", ErrBadOption, b.Tokens)
	}
	if b.Ratio != 0 && (b.Ratio <= 0 || b.Ratio > 1) {
		return fmt.Errorf("%w: ratio must be in (0, 1], got %g", ErrBadOption, b.Ratio)
	}
	if b.Tokens > 0 && b.Ratio > 0 {
		return fmt.Errorf("%w: give a budget or a ratio, not both", ErrBadOption)
	}
	for i, n := range b.PerLayer {
		if n <= 0 {
			return fmt.Errorf("%w: per-layer budget of layer %d must be > 0, got %d", ErrBadOption, i, n)
		}
	}
	return nil
}

// CheckLayers checks that per-layer budgets, when given, name every one of
// a model's layers (Limit would otherwise repeat the last value silently).
func (b Budget) CheckLayers(layers int) error {
	if len(b.PerLayer) > 0 && len(b.PerLayer) != layers {
		return fmt.Errorf("%w: %d per-layer budgets for a model of %d layers: give one per layer", ErrBadOption, len(b.PerLayer), layers)
	}
	return nil
}

// Limit is the number of tokens a head of layer may keep once n tokens have
// been processed (Pass.Processed). A Ratio budget is a ratio of the tokens
// processed so far (the full cache's size), not of the tokens currently
// held: the latter would shrink the cache geometrically at every pass.
func (b Budget) Limit(layer, n int) int {
	switch {
	case len(b.PerLayer) > 0:
		if layer < len(b.PerLayer) {
			return b.PerLayer[layer]
		}
		return b.PerLayer[len(b.PerLayer)-1]
	case b.Tokens > 0:
		return b.Tokens
	case b.Ratio > 0:
		k := int(b.Ratio*float64(n) + 0.999999)
		if k < 1 {
			k = 1
		}
		return k
	}
	return n
}

// Options are a policy's "key=value" settings from its spec string.
type Options map[string]string

// Factory makes a policy from its options and budget. It must reject options
// it does not take (use Options.Check) and a missing budget it needs.
type Factory func(opts Options, b Budget) (Policy, error)

type entry struct {
	help    string
	factory Factory
}

var (
	mu       sync.RWMutex
	registry = map[string]entry{}
)

// Register adds a policy under name; packages call it from init().
func Register(name, help string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic("policy: " + name + " registered twice")
	}
	registry[name] = entry{help, f}
}

// Names lists the registered policies, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Help returns the one-line description of a registered policy.
func Help(name string) string {
	mu.RLock()
	defer mu.RUnlock()
	return registry[name].help
}

// New makes a policy from a spec "name" or "name:key=value,key=value" (for
// the NAMM, "namm:PATH" is also accepted: a bare value is stored under the
// key "path").
func New(spec string, b Budget) (Policy, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	name, rest, _ := strings.Cut(strings.TrimSpace(spec), ":")
	mu.RLock()
	e, ok := registry[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: unknown memory policy %q (valid: %s)", ErrBadOption, name, strings.Join(Names(), ", "))
	}
	opts := Options{}
	if rest != "" {
		for _, kv := range strings.Split(rest, ",") {
			k, v, found := strings.Cut(kv, "=")
			if !found {
				k, v = "path", kv
			}
			opts[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return e.factory(opts, b)
}

// Check returns an error naming the first option not in allowed.
func (o Options) Check(policy string, allowed ...string) error {
	for k := range o {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("%w: policy %s takes no option %q (valid: %s)", ErrBadOption, policy, k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// Int reads an integer option with a default.
func (o Options) Int(policy, key string, def int) (int, error) {
	s, ok := o[key]
	if !ok {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%w: policy %s option %s=%q is not an integer", ErrBadOption, policy, key, s)
	}
	return v, nil
}

// Float reads a float option with a default.
func (o Options) Float(policy, key string, def float64) (float64, error) {
	s, ok := o[key]
	if !ok {
		return def, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: policy %s option %s=%q is not a number", ErrBadOption, policy, key, s)
	}
	return v, nil
}
