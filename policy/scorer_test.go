package policy

import (
	"reflect"
	"strings"
	"testing"
)

// countScorer is an Accumulator whose memory counts the passes each token
// has seen; it scores by that count, so the oldest tokens win.
type countScorer struct {
	firsts [][]int // first, per Accumulate call
	short  bool    // Score returns one score too few for head 0
}

func (*countScorer) NeedsFor(Pass) Needs { return Needs{} }
func (*countScorer) Protect(int) Protect { return Protect{} }
func (c *countScorer) Accumulate(v *LayerView, mem [][]float64, first []int) error {
	c.firsts = append(c.firsts, append([]int(nil), first...))
	for k := range mem {
		for i := range mem[k] {
			mem[k][i]++
		}
	}
	return nil
}

func (c *countScorer) Score(_ *LayerView, mem [][]float64) ([][]float64, error) {
	if c.short {
		return [][]float64{mem[0][1:], mem[1]}, nil
	}
	return mem, nil
}

// TestScorerPolicyAccumulates: the adapter grows an Accumulator's memory for
// each pass's new tokens (telling where they start), scores only over the
// limit, keeps the top scores plus the newest token, compacts the memory
// with the answer, and refuses scores of the wrong length.
func TestScorerPolicyAccumulates(t *testing.T) {
	c := &countScorer{}
	p, err := NewScorerPolicy("count", Budget{Tokens: 3}, c, "x=1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "count:budget=3,x=1" {
		t.Errorf("Name = %q", p.Name())
	}
	if err := p.Reset(oneLayer(2)); err != nil {
		t.Fatal(err)
	}
	pos := [][]int32{span(0, 2), span(0, 2)}
	keep, err := p.Update(&LayerView{Pass: Pass{Phase: Prefill, NewTokens: 2, PromptLen: 4}, Positions: pos})
	if err != nil || keep != nil {
		t.Fatalf("under the limit: keep %v, %v", keep, err)
	}
	pos = [][]int32{span(0, 4), span(0, 4)}
	keep, err = p.Update(&LayerView{Pass: Pass{Phase: Prefill, Start: 2, NewTokens: 2, LastPrefill: true, PromptLen: 4}, Positions: pos})
	if err != nil {
		t.Fatal(err)
	}
	// counts 2, 2, 1, 1: the two oldest and the newest stay
	if want := [][]int{{0, 1, 3}, {0, 1, 3}}; !reflect.DeepEqual(keep, want) {
		t.Errorf("keep %v, want %v", keep, want)
	}
	if want := [][]int{{0, 0}, {2, 2}}; !reflect.DeepEqual(c.firsts, want) {
		t.Errorf("first new tokens %v, want %v", c.firsts, want)
	}
	if got := p.mem[0]; !reflect.DeepEqual(got, [][]float64{{2, 2, 1}, {2, 2, 1}}) {
		t.Errorf("memory after compaction %v", got)
	}
	c.short = true
	pos = [][]int32{{0, 1, 3, 4}, {0, 1, 3, 4}}
	_, err = p.Update(&LayerView{Pass: Pass{Phase: Decode, Start: 4, NewTokens: 1, PromptLen: 4}, Positions: pos})
	if err == nil || !strings.Contains(err.Error(), "3 scores for 4 tokens") {
		t.Errorf("short scores: %v", err)
	}
}

// TestScorerPolicyNeedsBudget: a scorer's policy is refused without a budget.
func TestScorerPolicyNeedsBudget(t *testing.T) {
	if _, err := NewScorerPolicy("count", Budget{}, &countScorer{}); err == nil || !strings.Contains(err.Error(), "needs a budget") {
		t.Errorf("no budget: %v", err)
	}
}
