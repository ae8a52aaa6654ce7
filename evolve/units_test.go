package evolve

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/namm-dev/namm/namm"
)

// TestFitnessByHand checks the §5 formula on hand-computed cases.
func TestFitnessByHand(t *testing.T) {
	cases := []struct {
		name         string
		scores, refs [][]float64
		want         float64
	}{
		// task 0: 0.5 / (0.25 + 1e-7); task 1: 1 / (1 + 1e-7).
		{"two tasks", [][]float64{{0.5, 0.5}, {1, 1}}, [][]float64{{0, 0.5}, {1, 1}},
			(0.5/(0.25+1e-7) + 1/(1+1e-7)) / 2},
		// Guard: task 0's references are all 0, its raw mean 0.5 counts.
		{"all-zero references", [][]float64{{1, 0}, {0.5, 0.5}}, [][]float64{{0, 0}, {0.5, 0}},
			(0.5 + 0.5/(0.25+1e-7)) / 2},
		{"zero everywhere", [][]float64{{0}}, [][]float64{{0}}, 0},
	}
	for _, c := range cases {
		got, err := Fitness(c.scores, c.refs)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if math.Abs(got-c.want) > 1e-12*math.Abs(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	if _, err := Fitness([][]float64{{1}}, [][]float64{{1, 1}}); err == nil {
		t.Error("mismatched lengths accepted")
	}
	if _, err := Fitness(nil, nil); err == nil {
		t.Error("no tasks accepted")
	}
}

// TestDrawSamples: distinct indices in range, deterministic, different per
// iteration and task, and uniform (chi-square over many draws).
func TestDrawSamples(t *testing.T) {
	const n, k = 10, 4
	counts := make([]int, n)
	for iter := 0; iter < 2000; iter++ {
		d := DrawSamples(5, iter, 0, n, k)
		if !reflect.DeepEqual(d, DrawSamples(5, iter, 0, n, k)) {
			t.Fatal("not deterministic")
		}
		seen := map[int]bool{}
		for _, i := range d {
			if i < 0 || i >= n || seen[i] {
				t.Fatalf("iter %d: draw %v has a duplicate or is out of range", iter, d)
			}
			seen[i] = true
			counts[i]++
		}
	}
	// Expected 800 each; chi-square with 9 degrees of freedom, p = 0.001 at 27.9.
	var chi2 float64
	for _, c := range counts {
		chi2 += float64((c-800)*(c-800)) / 800
	}
	if chi2 > 27.9 {
		t.Errorf("counts %v: chi-square %.1f, not uniform", counts, chi2)
	}
	if reflect.DeepEqual(DrawSamples(5, 1, 0, 100, 10), DrawSamples(5, 1, 1, 100, 10)) ||
		reflect.DeepEqual(DrawSamples(5, 1, 0, 100, 10), DrawSamples(5, 2, 0, 100, 10)) ||
		reflect.DeepEqual(DrawSamples(5, 1, 0, 100, 10), DrawSamples(6, 1, 0, 100, 10)) {
		t.Error("draws do not depend on task, iteration and seed")
	}
	if d := DrawSamples(1, 0, 0, 5, 5); len(d) != 5 {
		t.Errorf("full draw %v", d)
	}
}

// TestJobWire: a job survives its JSON encoding bit for bit, including NaN
// payload-free float32 bit patterns and the normalisation.
func TestJobWire(t *testing.T) {
	j := Job{Batch: "b", Index: 3, Model: "m", Spec: "niah_single:len=600:n=4:seed=1", Sample: 2, PromptHash: "00ff",
		MaxNew: 7, Params: make([]float32, namm.NumParams), ReplyTo: "namm.results.q"}
	for i := range j.Params {
		j.Params[i] = float32(math.Sin(float64(i))) * 1e-3
	}
	j.Params[5] = float32(math.Copysign(0, -1))
	j.Norm.Mean[3], j.Norm.Var[16] = 0.1, 3.3e-9
	data, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var back Job
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for i := range j.Params {
		if math.Float32bits(j.Params[i]) != math.Float32bits(back.Params[i]) {
			t.Fatalf("param %d: %v -> %v", i, j.Params[i], back.Params[i])
		}
	}
	back.Params, j.Params = nil, nil
	if !reflect.DeepEqual(back, j) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, j)
	}
	full := Job{Batch: "b"}
	data, _ = json.Marshal(full)
	if err := json.Unmarshal(data, &back); err != nil || back.Params != nil {
		t.Errorf("full-cache job: params %v, err %v", back.Params, err)
	}
	if err := json.Unmarshal([]byte(`{"Params":"AAAA"}`), &back); err == nil || !strings.Contains(err.Error(), "parameter bytes") {
		t.Errorf("short params: %v", err)
	}
}

// TestParseStage: defaults (pool size, split=train), validation specs, errors.
func TestParseStage(t *testing.T) {
	st, err := ParseStage("niah_single:len=600, vartrack:len=700:n=9:seed=4", 12, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"niah_single:len=600:n=12:seed=1:split=train", "vartrack:len=700:n=9:seed=4:split=train"}
	wantVal := []string{"niah_single:len=600:n=3:seed=1000004:split=train", "vartrack:len=700:n=3:seed=1000007:split=train"}
	for i := range want {
		if st.Train[i].String() != want[i] || st.Val[i].String() != wantVal[i] {
			t.Errorf("task %d: %s / %s, want %s / %s", i, st.Train[i], st.Val[i], want[i], wantVal[i])
		}
	}
	for _, bad := range []string{"", "nope:len=100", "niah_single:len=600,niah_single:len=600", "niah_single:len=600,"} {
		if _, err := ParseStage(bad, 4, 2); err == nil {
			t.Errorf("ParseStage(%q) accepted", bad)
		}
	}
}

// TestIdentityDiff names every differing field.
func TestIdentityDiff(t *testing.T) {
	a := Identity{Params: 4172, Population: 32, Stages: [][]string{{"x"}}}
	b := a
	b.Params, b.Stages = 100, [][]string{{"y"}}
	d := a.Diff(b)
	if len(d) != 2 || d[0] != "params: checkpoint 4172, this run 100" || d[1] != "stages: checkpoint [[x]], this run [[y]]" {
		t.Errorf("diff %q", d)
	}
	if len(a.Diff(a)) != 0 {
		t.Error("identity differs from itself")
	}
}

// TestCheckpointCodec: round trip, and every single-byte corruption of a
// small checkpoint is detected.
func TestCheckpointCodec(t *testing.T) {
	c := &checkpoint{checkpointMeta: checkpointMeta{Identity: Identity{Params: 1, Stages: [][]string{{"a"}}}, Seq: 4,
		Progress: Progress{Stage: 1, StageGen: 2, Iter: 9}, HasBest: true, BestVal: 0.25, LogBytes: 77},
		CMA: []byte("cma state"), BestCMA: []byte("best")}
	c.Norm.Mean[0] = 1.5
	data, err := c.marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := unmarshalCheckpoint(data)
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 1
		if _, err := unmarshalCheckpoint(bad); !errors.Is(err, ErrCorruptCheckpoint) {
			t.Fatalf("flipped byte %d not detected: %v", i, err)
		}
	}
	for n := range data {
		if _, err := unmarshalCheckpoint(data[:n]); err == nil {
			t.Fatalf("truncated to %d bytes accepted", n)
		}
	}
}

// TestCheckpointCRCMatchesPython cross-checks the checksum (CRC-32C) with an
// independent implementation written in Python's standard library.
func TestCheckpointCRCMatchesPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	c := &checkpoint{CMA: []byte("x")}
	data, _ := c.marshal()
	script := `
import sys
data = sys.stdin.buffer.read()
crc = 0xFFFFFFFF
for b in data[:-4]:
    crc ^= b
    for _ in range(8):
        crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
print(crc ^ 0xFFFFFFFF, int.from_bytes(data[-4:], "little"))
`
	cmd := exec.Command("python3", "-c", script)
	cmd.Stdin = strings.NewReader(string(data))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != f[1] {
		t.Errorf("python CRC-32C %v", f)
	}
	if _, err := strconv.Atoi(f[0]); err != nil {
		t.Error(err)
	}
}

// FuzzCheckpoint: arbitrary bytes never panic the checkpoint reader, and a
// valid checkpoint re-encodes to the same bytes.
func FuzzCheckpoint(f *testing.F) {
	c := &checkpoint{checkpointMeta: checkpointMeta{Seq: 1}, CMA: []byte{1, 2, 3}}
	data, _ := c.marshal()
	f.Add(data)
	f.Add([]byte(ckptMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := unmarshalCheckpoint(data)
		if err != nil {
			return
		}
		if _, err := c.marshal(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzJob: arbitrary job messages never panic the decoder.
func FuzzJob(f *testing.F) {
	data, _ := json.Marshal(Job{Batch: "b", Params: make([]float32, namm.NumParams)})
	f.Add(data)
	f.Add([]byte(`{"Params":"AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var j Job
		if json.Unmarshal(data, &j) == nil && j.Params != nil && len(j.Params) != namm.NumParams {
			t.Fatalf("decoded %d params", len(j.Params))
		}
	})
}

// TestEvaluatorErrors: a job for another model, a sample out of range or a
// prompt that regenerates differently fails with the reason, and a failed
// job fails the local pool's batch.
func TestEvaluatorErrors(t *testing.T) {
	ev := tinyEvaluator(t)
	spec := "niah_single:len=100:n=1:seed=1"
	cases := []struct {
		job  Job
		want string
	}{
		{Job{Model: "other-model", Spec: spec}, "job is for model other-model"},
		{Job{Model: ev.Fingerprint, Spec: spec, Sample: 3}, "sample 3 of " + spec + " out of range"},
		{Job{Model: ev.Fingerprint, Spec: spec, PromptHash: "0123456789abcdef"}, "regenerated prompt hash"},
		{Job{Model: ev.Fingerprint, Spec: "nope:len=100"}, "unknown task"},
	}
	for _, c := range cases {
		if r := ev.Run(c.job); !strings.Contains(r.Err, c.want) {
			t.Errorf("job %+v: error %q, want it to contain %q", c.job, r.Err, c.want)
		}
	}
	jobs := []Job{{Batch: "b", Index: 0, Model: ev.Fingerprint, Spec: spec, MaxNew: 1},
		{Batch: "b", Index: 1, Model: ev.Fingerprint, Spec: spec, Sample: 9}}
	_, err := NewLocalPool(ev, 2).Run(context.Background(), jobs, nil)
	if err == nil || !strings.Contains(err.Error(), "job b/1") {
		t.Errorf("local pool with a failing job: %v", err)
	}
}

// TestImprovesTieBreak: a validated mean replaces the best when it scores
// higher, or equal with fewer KV tokens; never when it scores lower.
func TestImprovesTieBreak(t *testing.T) {
	tr := &Trainer{}
	if !tr.improves(0.2, 900) {
		t.Fatal("the first validation must become the best")
	}
	tr.ck.HasBest, tr.ck.BestVal, tr.ck.BestKV = true, 1, 2544
	for _, c := range []struct {
		fit, kv float64
		want    bool
	}{{1.1, 3000, true}, {1, 800, true}, {1, 2544, false}, {1, 3000, false}, {0.99, 100, false}} {
		if got := tr.improves(c.fit, c.kv); got != c.want {
			t.Errorf("best 1 at 2544 KV: improves(%v, %v) = %v, want %v", c.fit, c.kv, got, c.want)
		}
	}
	tr.ck.BestKV = 0 // a checkpoint from before best_kv: a tie replaces it
	if !tr.improves(1, 3000) {
		t.Error("a tie with an unknown best KV must replace the best")
	}
}

// TestWithMemory: the memory term by hand, and off at weight 0.
func TestWithMemory(t *testing.T) {
	for _, c := range []struct{ fit, kv, ref, w, want float64 }{
		{0.8, 1500, 2000, 0, 0.8},     // the reference: score only
		{0.8, 1500, 2000, 0.5, 0.925}, // 0.8 + 0.5 x 0.25
		{1.0, 2000, 2000, 1, 1.0},     // nothing saved
		{0.5, 100, 0, 1, 0.5},         // no reference KV: unchanged
	} {
		if got := WithMemory(c.fit, c.kv, c.ref, c.w); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("WithMemory(%v, %v, %v, %v) = %v, want %v", c.fit, c.kv, c.ref, c.w, got, c.want)
		}
	}
}
