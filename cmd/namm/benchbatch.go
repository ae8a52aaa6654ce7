package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"text/tabwriter"
	"time"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/policy"
)

// batchBenchResult is a batched run against batch 1 in the same process.
type batchBenchResult struct {
	Batch   int         `json:"batch"`
	Memory  string      `json:"memory"`
	Context int         `json:"context"`
	Decode  int         `json:"decode_tokens"`
	Runs    []batchTime `json:"runs"` // batch 1, then the batch
	// Ratios of the batch's tokens/s (all sequences) to batch 1's.
	PrefillSpeedup float64 `json:"prefill_speedup"`
	DecodeSpeedup  float64 `json:"decode_speedup"`
	CPU            string  `json:"machine"`
}

// batchTime is one batched run: B sequences of the same prompt length,
// prefilled together then decoded together.
type batchTime struct {
	Batch          int     `json:"batch"`
	PrefillSeconds float64 `json:"prefill_seconds"`
	PrefillTokS    float64 `json:"prefill_tokens_per_second"` // all sequences
	DecodeSeconds  float64 `json:"decode_seconds"`
	DecodeTokS     float64 `json:"decode_tokens_per_second"` // all sequences
	DecodeMsTok    float64 `json:"decode_ms_per_token"`      // per sequence: the time of one step
	KVBytes        []int64 `json:"kv_bytes_per_sequence"`
}

// benchBatch runs n sequences of random prompts of length context through
// one engine.Batch: the time until every prompt is in (the prefill) and
// the time of the decode steps after it.
func benchBatch(e *engine.Engine, newPolicy func() (policy.Policy, error), n, context, decode int, seed uint64) (batchTime, error) {
	b := e.NewBatch()
	seqs := make([]*engine.Seq, n)
	for i := range seqs {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		ids := make([]int, context)
		for j := range ids {
			ids[j] = rng.IntN(e.Config.VocabSize)
		}
		p, err := newPolicy()
		if err != nil {
			return batchTime{}, err
		}
		s, err := e.NewSession(p)
		if err != nil {
			return batchTime{}, err
		}
		seqs[i] = &engine.Seq{Session: s, Prompt: ids, MaxNew: decode + 1}
		b.Add(seqs[i])
	}
	prefilled := func() bool {
		for _, s := range seqs {
			if len(s.Out) == 0 && !s.Done {
				return false
			}
		}
		return true
	}
	t0 := time.Now()
	for !prefilled() {
		b.Step()
	}
	pre := time.Since(t0)
	t1 := time.Now()
	b.Run()
	dec := time.Since(t1)
	r := batchTime{Batch: n, PrefillSeconds: pre.Seconds(), PrefillTokS: float64(n*context) / pre.Seconds(), DecodeSeconds: dec.Seconds()}
	for _, s := range seqs {
		if s.Err != nil {
			return r, s.Err
		}
		r.KVBytes = append(r.KVBytes, s.Session.Stats().PeakBytes)
	}
	if decode > 0 {
		r.DecodeTokS = float64(n*decode) / dec.Seconds()
		r.DecodeMsTok = dec.Seconds() * 1000 / float64(decode)
	}
	return r, nil
}

// runBatchBench measures batch 1 and batch n alternately (reps rounds
// after a warm-up round, the best of each kept), so that both see the
// machine in the same state.
func runBatchBench(e *engine.Engine, newPolicy func() (policy.Policy, error), n, context, decode, reps int) (batchBenchResult, error) {
	if err := e.CheckBatchMemory(n, context+decode+1, 0); err != nil {
		return batchBenchResult{}, err
	}
	best := [2]batchTime{}
	for rep := range reps + 1 {
		for k, size := range []int{1, n} {
			r, err := benchBatch(e, newPolicy, size, context, decode, uint64(rep+1))
			if err != nil {
				return batchBenchResult{}, err
			}
			if rep == 0 {
				continue // warm-up
			}
			if best[k].Batch == 0 || r.PrefillSeconds < best[k].PrefillSeconds {
				best[k].Batch, best[k].PrefillSeconds, best[k].PrefillTokS, best[k].KVBytes = r.Batch, r.PrefillSeconds, r.PrefillTokS, r.KVBytes
			}
			if best[k].DecodeSeconds == 0 || r.DecodeSeconds < best[k].DecodeSeconds {
				best[k].DecodeSeconds, best[k].DecodeTokS, best[k].DecodeMsTok = r.DecodeSeconds, r.DecodeTokS, r.DecodeMsTok
			}
		}
	}
	p, err := newPolicy()
	if err != nil {
		return batchBenchResult{}, err
	}
	res := batchBenchResult{Batch: n, Memory: p.Name(), Context: context, Decode: decode, Runs: best[:], CPU: machine()}
	res.PrefillSpeedup = best[1].PrefillTokS / best[0].PrefillTokS
	if decode > 0 {
		res.DecodeSpeedup = best[1].DecodeTokS / best[0].DecodeTokS
	}
	return res, nil
}

func printBatchBench(out io.Writer, model string, r batchBenchResult) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "model\t%s, memory %s, %d-token prompts, %d decoded tokens\n", model, r.Memory, r.Context, r.Decode)
	fmt.Fprintf(w, "batch\tprefill tok/s (all)\tdecode tok/s (all)\tdecode ms/token (per sequence)\tKV MiB peak per sequence\n")
	for _, t := range r.Runs {
		fmt.Fprintf(w, "%d\t%.1f\t%.1f\t%.2f\t%.2f\n", t.Batch, t.PrefillTokS, t.DecodeTokS, t.DecodeMsTok, float64(t.KVBytes[0])/(1<<20))
	}
	fmt.Fprintf(w, "batch %d / batch 1\tprefill %.2fx\tdecode %.2fx\n", r.Batch, r.PrefillSpeedup, r.DecodeSpeedup)
	fmt.Fprintf(w, "machine\t%s\n", r.CPU)
	return w.Flush()
}
