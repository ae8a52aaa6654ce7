package train

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/namm-dev/namm/engine"
)

// tinyConfig loads configs/tiny-cpu.json with the schedule shortened to steps.
func tinyConfig(t *testing.T, steps int) *RunConfig {
	t.Helper()
	c, err := LoadRunConfig(filepath.Join("..", "configs", "tiny-cpu.json"))
	if err != nil {
		t.Fatal(err)
	}
	c.Train.MaxSteps = steps
	// Shorter rows and batches than the config keep the test well under a
	// minute on 2 cores (about 0.4 s per step instead of 1.7 s).
	c.Train.SeqLen, c.Train.MicroBatchSize = 32, 2
	c.Train.CheckpointEvery = 0
	c.Train.CheckpointMins = 0
	return c
}

// tinyData is a token file of 32 sequences of 128 tokens (two training rows
// each): every sequence repeats a motif of 8 ids drawn from 300 ids, so a
// model can lower its loss quickly by learning both the frequent ids and the
// in-context repetition.
func tinyData(t *testing.T) *TokenFile {
	t.Helper()
	f := NewTokenFile(TokenHeader{VocabSize: 32000, SeqLen: 128, Count: 32, BOS: 1, EOS: 2})
	r := rand.New(rand.NewPCG(7, 7))
	for i := range f.Count {
		motif := make([]int, 8)
		for j := range motif {
			motif[j] = 100 + r.IntN(300)
		}
		ids := make([]int, f.SeqLen)
		ids[0] = 1
		for j := 1; j < len(ids); j++ {
			ids[j] = motif[j%8]
		}
		if err := f.SetSeq(i, ids); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func mean(xs []StepLog) float64 {
	s := 0.0
	for _, x := range xs {
		s += x.Loss
	}
	return s / float64(len(xs))
}

// Training lowers the loss; the written directory loads in the engine and
// gives the training forward's logits; a stopped and resumed run repeats
// the uninterrupted run's losses exactly.
func TestTrainBaseTiny(t *testing.T) {
	const steps = 24
	data := tinyData(t)
	full := t.TempDir()
	res, err := TrainBase(BaseOptions{Config: tinyConfig(t, steps), Data: data, OutDir: full})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Log) != steps || res.Steps != steps {
		t.Fatalf("%d log records, %d steps; want %d", len(res.Log), res.Steps, steps)
	}
	first, last := mean(res.Log[:5]), mean(res.Log[steps-5:])
	t.Logf("loss %.3f -> %.3f (ln V = %.3f); %d parameters; %.1f s", res.Log[0].Loss, res.Log[steps-1].Loss, math.Log(32000), res.Parameters, res.Elapsed.Seconds())
	if math.Abs(res.Log[0].Loss-math.Log(32000)) > 0.5 {
		t.Errorf("first loss %.3f, want near ln(32000) = %.3f for a fresh model", res.Log[0].Loss, math.Log(32000))
	}
	if last > first-2 {
		t.Errorf("mean loss of the last 5 steps %.3f, first 5 %.3f: want a drop of at least 2 nats", last, first)
	}
	// Learning rate schedule as logged: warm-up then cosine to min_lr_frac.
	tp := tinyConfig(t, steps).Train
	if got, want := res.Log[0].LR, tp.LR/float64(tp.WarmupSteps); math.Abs(got-want) > 1e-12 {
		t.Errorf("step 1 lr %g, want %g", got, want)
	}
	for _, name := range []string{"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "train/" + LossPlotFile, "train/" + LogFile, "train/" + CheckpointFile} {
		if st, err := os.Stat(filepath.Join(full, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", name, err)
		}
	}

	// Parity: the inference engine (KV cache, prefill + decode) against the
	// training graph's full-sequence logits.
	e, err := engine.Load(full, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 120, 250, 399, 120, 250, 17, 31999}
	b, err := backends.NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := ForwardLogits(b, e.Config, res.Params, ids)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(nil)
	if err != nil {
		t.Fatal(err)
	}
	v := e.Config.VocabSize
	for i, id := range ids {
		var got []float32
		if i == 0 {
			got, err = s.Prefill(ids[:1])
		} else {
			got, err = s.Decode(id)
		}
		if err != nil {
			t.Fatal(err)
		}
		ref := want[i*v : (i+1)*v]
		var num, den float64
		for j := range got {
			num += (float64(got[j]) - float64(ref[j])) * (float64(got[j]) - float64(ref[j]))
			den += float64(ref[j]) * float64(ref[j])
		}
		if rel := math.Sqrt(num / den); rel > 1e-4 {
			t.Errorf("token %d: engine vs training logits relative error %.2e", i, rel)
		}
	}

	// Exact resume: stop at step 12, resume to 24.
	split := t.TempDir()
	if _, err := TrainBase(BaseOptions{Config: tinyConfig(t, steps), Data: data, OutDir: split, StopAfter: 12}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(split, "model.safetensors")); err == nil {
		t.Errorf("a stopped run wrote the model directory")
	}
	res2, err := TrainBase(BaseOptions{Config: tinyConfig(t, steps), Data: data, OutDir: split, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res2.ResumedAt != 12 || len(res2.Log) != steps {
		t.Fatalf("resumed at %d with %d records; want 12 and %d", res2.ResumedAt, len(res2.Log), steps)
	}
	for i := range res.Log {
		if res.Log[i].Loss != res2.Log[i].Loss {
			t.Errorf("step %d: loss %.9g uninterrupted, %.9g stopped and resumed", i+1, res.Log[i].Loss, res2.Log[i].Loss)
		}
	}
	for i := range res.Params {
		for j := range res.Params[i] {
			if res.Params[i][j] != res2.Params[i][j] {
				t.Fatalf("parameter %d element %d differs after resume", i, j)
			}
		}
	}
}

func TestLRAt(t *testing.T) {
	// Hand-checked: warm-up of 4 to 1.0, cosine to 0.1 at step 14.
	cases := []struct {
		step int
		want float64
	}{{0, 0.25}, {3, 1}, {4, 1}, {9, 0.1 + 0.9*0.5}, {14, 0.1}, {20, 0.1}}
	for _, c := range cases {
		if got := LRAt(c.step, 1, 4, 14, 0.1); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("LRAt(%d) = %g, want %g", c.step, got, c.want)
		}
	}
}

func TestLoadRunConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"bad json":     `{`,
		"no model":     `{"tokenizer":"x","train":{}}`,
		"bad seq_len":  `{"tokenizer":"x","model":{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"rms_norm_eps":1e-5,"rope_theta":10000,"max_position_embeddings":64},"train":{"seq_len":1,"micro_batch_size":1,"lr":0.1,"max_steps":1}}`,
		"qwen2 biases": `{"tokenizer":"x","model":{"model_type":"qwen2","vocab_size":10,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"rms_norm_eps":1e-5,"rope_theta":10000,"max_position_embeddings":64,"attention_bias":true},"train":{"seq_len":8,"micro_batch_size":1,"lr":0.1,"max_steps":1}}`,
	}
	for name, body := range cases {
		p := filepath.Join(dir, "c.json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadRunConfig(p); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
