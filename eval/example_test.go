package eval_test

import (
	"fmt"
	"log"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/eval"
	"github.com/namm-dev/namm/policy"
	"github.com/namm-dev/namm/tokenizer"
)

// Scoring a policy as a library, as evolution does: load tasks once, run the
// full cache as the reference, then each candidate policy, and compare.
func ExampleScoreSamples() {
	const dir = "../testdata/models/tiny-llama"
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	e, err := engine.Load(dir, engine.Options{})
	if err != nil {
		log.Fatal(err)
	}
	tasks, err := eval.LoadTasks([]string{"niah_single:len=256:n=2"}, tok, eval.LoadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	samples := tasks[0].Samples
	for i := range samples {
		samples[i].MaxNewTokens = 8 // keep the example fast
	}
	ref, err := eval.ScoreSamples(e, tok, samples, func() (policy.Policy, error) {
		return policy.New("full", policy.Budget{})
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := eval.ScoreSamples(e, tok, samples, func() (policy.Policy, error) {
		return policy.New("h2o", policy.Budget{Tokens: 64})
	})
	if err != nil {
		log.Fatal(err)
	}
	norm, counted := eval.NormalizedScore(res, ref)
	fmt.Println(len(res), "samples; mean KV tokens per layer <= 64:", res[0].MeanKVTokens <= 64)
	_ = norm    // NaN here: the random-weight model scores 0 with the full cache
	_ = counted // tasks whose reference score was not 0
	// Output: 2 samples; mean KV tokens per layer <= 64: true
}
