package evolve

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/namm-dev/namm/namm"
)

// Job asks for one prompt to be answered under one memory policy and scored.
type Job struct {
	Batch  string // batch it belongs to; results of other batches are ignored
	Index  int    // position in the batch
	Model  string // fingerprint of the model the coordinator loaded (ModelFingerprint)
	Spec   string // canonical task spec of the pool (gen.Spec.String)
	Sample int    // index of the sample in the pool
	// PromptHash is the first 8 bytes (hex) of SHA-256 of the prompt, so a
	// worker whose generator differs refuses instead of scoring another text.
	PromptHash string
	MaxNew     int // cap on new tokens; 0 keeps the sample's own budget
	// Params is the NAMM parameter vector [namm.NumParams]; nil means the
	// full cache (the reference score).
	Params []float32
	Norm   namm.Norm // frozen normalisation; ignored with the full cache
	// ReplyTo is the subject the result goes to (NATS pools only).
	ReplyTo string
}

// Result is the outcome of a Job.
type Result struct {
	Batch  string
	Index  int
	Score  float64 // task metric in [0, 1]
	KVMean float64 // mean over passes of the KV tokens held per layer (max over heads)
	KVPeak int     // peak KV tokens, all layers
	NewTok int     // tokens generated
	Err    string  // non-empty when the job failed
	Worker string  // who ran it (for logs)
}

// wireJob is Job on the wire: the parameters as little-endian float32 bytes
// (base64 in JSON, about 5.6 KB instead of ~45 KB of decimal text).
type wireJob struct {
	Batch      string
	Index      int
	Model      string
	Spec       string
	Sample     int
	PromptHash string
	MaxNew     int
	Params     []byte `json:",omitempty"`
	NormMean   [namm.Bins]float32
	NormVar    [namm.Bins]float32
	ReplyTo    string `json:",omitempty"`
}

// MarshalJSON encodes the job compactly.
func (j Job) MarshalJSON() ([]byte, error) {
	w := wireJob{Batch: j.Batch, Index: j.Index, Model: j.Model, Spec: j.Spec, Sample: j.Sample,
		PromptHash: j.PromptHash, MaxNew: j.MaxNew, NormMean: j.Norm.Mean, NormVar: j.Norm.Var, ReplyTo: j.ReplyTo}
	if j.Params != nil {
		w.Params = make([]byte, 4*len(j.Params))
		for i, v := range j.Params {
			binary.LittleEndian.PutUint32(w.Params[4*i:], math.Float32bits(v))
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes a job written by MarshalJSON.
func (j *Job) UnmarshalJSON(data []byte) error {
	var w wireJob
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("job: %w", err)
	}
	if w.Params != nil && len(w.Params) != 4*namm.NumParams {
		return fmt.Errorf("job %s/%d: %d parameter bytes, want %d", w.Batch, w.Index, len(w.Params), 4*namm.NumParams)
	}
	*j = Job{Batch: w.Batch, Index: w.Index, Model: w.Model, Spec: w.Spec, Sample: w.Sample,
		PromptHash: w.PromptHash, MaxNew: w.MaxNew, Norm: namm.Norm{Mean: w.NormMean, Var: w.NormVar}, ReplyTo: w.ReplyTo}
	if w.Params != nil {
		j.Params = make([]float32, namm.NumParams)
		for i := range j.Params {
			j.Params[i] = math.Float32frombits(binary.LittleEndian.Uint32(w.Params[4*i:]))
		}
	}
	return nil
}
