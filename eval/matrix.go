package eval

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/namm-dev/namm/policy"
)

// ReferencePolicy is the policy every score is normalised by.
const ReferencePolicy = "full"

// Variant is one column of the evaluation: a policy spec with one budget (the
// zero Budget for policies that take none).
type Variant struct {
	Policy string        // spec as given to policy.New, e.g. "h2o:recent=8"
	Budget policy.Budget // zero for unbudgeted policies
}

// Label is "policy@budget", or the policy alone without a budget.
func (v Variant) Label() string {
	if b := BudgetLabel(v.Budget); b != "" {
		return v.Policy + "@" + b
	}
	return v.Policy
}

// New makes a fresh policy of the variant (policies keep per-sequence state).
func (v Variant) New() (policy.Policy, error) { return policy.New(v.Policy, v.Budget) }

// IsReference reports whether the variant is the full cache.
func (v Variant) IsReference() bool { return v.Policy == ReferencePolicy && v.Budget.IsZero() }

// BudgetLabel renders a budget: "256" tokens, "r0.25" a ratio, "L128/256/..."
// per layer, "" none.
func BudgetLabel(b policy.Budget) string {
	switch {
	case len(b.PerLayer) > 0:
		parts := make([]string, len(b.PerLayer))
		for i, n := range b.PerLayer {
			parts[i] = strconv.Itoa(n)
		}
		return "L" + strings.Join(parts, "/")
	case b.Tokens > 0:
		return strconv.Itoa(b.Tokens)
	case b.Ratio > 0:
		return "r" + strconv.FormatFloat(b.Ratio, 'g', -1, 64)
	}
	return ""
}

// ParseBudgets reads a comma-separated budget list: token counts ("256") and
// ratios of the current length ("0.25", "r0.25").
func ParseBudgets(s string) ([]policy.Budget, error) {
	var out []policy.Budget
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var b policy.Budget
		if n, err := strconv.Atoi(f); err == nil {
			b.Tokens = n
		} else if r, err := strconv.ParseFloat(strings.TrimPrefix(f, "r"), 64); err == nil && strings.ContainsAny(f, ".r") {
			if !(r > 0 && r <= 1) { // also refuses NaN
				return nil, fmt.Errorf("budget %q: a ratio must be in (0, 1]", f)
			}
			b.Ratio = r
		} else {
			return nil, fmt.Errorf("budget %q is neither a token count nor a ratio in (0, 1]", f)
		}
		if b.IsZero() {
			return nil, fmt.Errorf("budget %q must be > 0", f)
		}
		if err := b.Validate(); err != nil {
			return nil, fmt.Errorf("budget %q: %w", f, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// SplitPolicies splits a comma-separated --memory list. Policy options are
// themselves comma-separated ("h2o:recent=8,streaming" is h2o with recent=8,
// then streaming), so a piece that is not a policy name and holds '=' (or,
// after "namm:PATH", any key=value) continues the previous policy.
func SplitPolicies(s string) []string {
	names := map[string]bool{}
	for _, n := range policy.Names() {
		names[n] = true
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		name, _, _ := strings.Cut(f, ":")
		if !names[name] && strings.Contains(f, "=") && len(out) > 0 {
			out[len(out)-1] += "," + f
			continue
		}
		out = append(out, f)
	}
	return out
}

// Matrix is the list of variants to run and notes on how it was made.
type Matrix struct {
	Variants []Variant
	Notes    []string // e.g. "full takes no budget: run once"
}

// BuildMatrix pairs every policy with every budget. Policies that take no
// budget (full, fastgen, namm) run once and the budgets are ignored for them;
// policies that need one get every budget and fail without any. The full cache
// is added first as the reference unless noReference.
func BuildMatrix(policies []string, budgets []policy.Budget, noReference bool) (Matrix, error) {
	var m Matrix
	seen := map[string]bool{}
	add := func(v Variant) {
		if !seen[v.Label()] {
			seen[v.Label()] = true
			m.Variants = append(m.Variants, v)
		}
	}
	if !noReference {
		add(Variant{Policy: ReferencePolicy})
	}
	if len(policies) == 0 {
		return m, fmt.Errorf("no memory policy given (valid: %s)", strings.Join(policy.Names(), ", "))
	}
	for _, spec := range policies {
		// Probe with and without a budget: the factories say which they take.
		_, errNone := policy.New(spec, policy.Budget{})
		_, errProbe := policy.New(spec, policy.Budget{Tokens: 1024})
		switch {
		case errProbe == nil:
			if len(budgets) == 0 {
				return m, fmt.Errorf("memory %s needs a budget: give --budget, --ratio or --budgets", spec)
			}
			for _, b := range budgets {
				if _, err := policy.New(spec, b); err != nil {
					return m, fmt.Errorf("memory %s with budget %s: %w", spec, BudgetLabel(b), err)
				}
				add(Variant{Policy: spec, Budget: b})
			}
		case errNone == nil:
			if len(budgets) > 0 {
				m.Notes = append(m.Notes, fmt.Sprintf("%s takes no budget: run once, budgets ignored", spec))
			}
			add(Variant{Policy: spec})
		case errNone.Error() == errProbe.Error():
			return m, fmt.Errorf("memory %s: %w", spec, errNone)
		default:
			return m, fmt.Errorf("memory %s: %w", spec, errors.Join(errNone, errProbe))
		}
	}
	return m, nil
}
