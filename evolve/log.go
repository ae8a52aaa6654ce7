package evolve

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// LogEntry is one line of the JSONL log (evolve.jsonl). Kind "generation"
// lines record one CMA-ES generation (and the validation of the mean that
// sampled it, when one ran); kind "validation" lines record the validation
// at the end of a stage.
type LogEntry struct {
	Kind     string `json:"kind"`
	Stage    int    `json:"stage"`            // 0-based
	Iter     int    `json:"generation"`       // global generation index
	StageGen int    `json:"stage_generation"` // generation within the stage
	// Fitness of each member, in Ask order.
	Fitness     []float64 `json:"fitness,omitempty"`
	MeanFitness float64   `json:"mean_fitness"`
	BestFitness float64   `json:"best_fitness"` // best member of this generation
	Sigma       float64   `json:"sigma"`        // step size that sampled this generation
	KVMean      float64   `json:"kv_mean"`      // mean KV tokens per layer over members and prompts
	RefKVMean   float64   `json:"ref_kv_mean"`  // same for the full cache on these prompts
	Val         *float64  `json:"val,omitempty"`
	ValKVMean   *float64  `json:"val_kv_mean,omitempty"`
	BestVal     *float64  `json:"best_val,omitempty"` // best validation of the stage so far
	// SHA-256 (first 8 bytes) of the candidates' float64 bits and of the
	// mean after Tell: bitwise fingerprints of the optimiser's trajectory.
	CandidatesHash string  `json:"candidates_sha256,omitempty"`
	MeanHash       string  `json:"mean_sha256"`
	Seconds        float64 `json:"seconds"`
}

// hashVectors fingerprints float64 vectors bit for bit.
func hashVectors(vs ...[]float64) string {
	h := sha256.New()
	var b [8]byte
	for _, v := range vs {
		for _, x := range v {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// appendLog appends one JSON line and returns the file length after it.
func appendLog(path string, e LogEntry) (int64, error) {
	line, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("log: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	var size int64
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil {
			size = fi.Size()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("log %s: %w", path, err)
	}
	return size, nil
}

// rewindLog cuts the log back to the length a checkpoint recorded (lines
// written after it belong to a generation that is being redone) and returns
// its entries.
func rewindLog(path string, size int64) ([]LogEntry, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	if int64(len(data)) < size {
		return nil, fmt.Errorf("log %s has %d bytes, the checkpoint recorded %d: the log was truncated or replaced", path, len(data), size)
	}
	if int64(len(data)) > size {
		if err := os.Truncate(path, size); err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
		data = data[:size]
	}
	var out []LogEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for n := 1; sc.Scan(); n++ {
		var e LogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("log %s line %d: %w", path, n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
