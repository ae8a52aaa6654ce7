package evolve

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/namm-dev/namm/internal/atomicfile"
	"github.com/namm-dev/namm/namm"
)

// Identity is what a checkpoint must share with the run that resumes it:
// any difference makes the continuation a different experiment.
type Identity struct {
	Params      int        `json:"params"`     // parameter count (namm.NumParams)
	Population  int        `json:"population"` // CMA-ES lambda
	CMA         string     `json:"cma"`        // "full" or "sep"
	Sigma0      float64    `json:"sigma0"`
	Seed        int64      `json:"seed"`
	Samples     int        `json:"samples"`     // prompts per task per generation
	ValSamples  int        `json:"val_samples"` // validation prompts per task
	EvalEvery   int        `json:"eval_every"`
	Generations int        `json:"generations"` // per stage
	MaxNew      int        `json:"max_new"`
	NormSamples int        `json:"norm_samples"`
	Model       string     `json:"model"`  // ModelFingerprint
	Stages      [][]string `json:"stages"` // canonical training specs per stage
	// MemoryWeight is omitted at 0 so that earlier checkpoints still match.
	MemoryWeight float64 `json:"memory_weight,omitempty"`
	// EigenEvery is the full mode's eigendecomposition interval when above
	// 1 (omitted for sep mode and for every generation, as in earlier
	// checkpoints).
	EigenEvery int `json:"eigen_every,omitempty"`
	// Draw is "answerable" for Config.Draw == DrawAnswerable, omitted for
	// the default, as in earlier checkpoints.
	Draw string `json:"draw,omitempty"`
	// Init is the Fingerprint of Config.Init, omitted for a run from zeros.
	Init string `json:"init,omitempty"`
}

// Diff names every field in which other differs from id, as
// "population: checkpoint 6, this run 4".
func (id Identity) Diff(other Identity) []string {
	var out []string
	a, b := reflect.ValueOf(id), reflect.ValueOf(other)
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			out = append(out, fmt.Sprintf("%s: checkpoint %v, this run %v", name, a.Field(i).Interface(), b.Field(i).Interface()))
		}
	}
	return out
}

// Progress locates a run in its curriculum.
type Progress struct {
	Stage    int `json:"stage"`     // current stage; len(stages) when finished
	StageGen int `json:"stage_gen"` // generations completed in this stage
	Iter     int `json:"iter"`      // generations completed in all stages (sample draws are keyed by it)
}

// checkpointMeta is the JSON part of a checkpoint.
type checkpointMeta struct {
	Identity Identity  `json:"identity"`
	Seq      int       `json:"seq"` // checkpoint sequence number (file name)
	Progress Progress  `json:"progress"`
	Norm     namm.Norm `json:"norm"`
	// Best validation score of the current stage and the iteration of its
	// mean; HasBest is false before the stage's first validation.
	HasBest  bool    `json:"has_best"`
	BestVal  float64 `json:"best_val"`
	BestIter int     `json:"best_iter"`
	// BestKV is the mean KV tokens per layer of the best mean's validation
	// (0: unknown, a checkpoint written before it was recorded).
	BestKV   float64 `json:"best_kv,omitempty"`
	LogBytes int64   `json:"log_bytes"` // length of the JSONL log at this point
	// Log is every log entry up to this point: a missing, truncated or
	// damaged evolve.jsonl is rewritten from it on resume. Checkpoints of
	// earlier versions have none.
	Log []LogEntry `json:"log,omitempty"`
}

// checkpoint is the complete state of a run between two generations.
type checkpoint struct {
	checkpointMeta
	CMA     []byte // cmaes.MarshalBinary of the optimiser
	BestCMA []byte // optimiser state whose mean scored BestVal (the next stage starts from it); nil without HasBest
}

// Checkpoint file: magic "NAMMEVCK", version uint32, then three
// length-prefixed (uint64) parts: meta JSON, CMA state, best CMA state; then
// CRC-32 (Castagnoli) of everything before it, uint32, little endian.
const (
	ckptMagic   = "NAMMEVCK"
	ckptVersion = 1
	ckptPrefix  = "checkpoint-"
	ckptSuffix  = ".ckpt"
)

var ckptCRC = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptCheckpoint is wrapped by errors about damaged checkpoint files.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

// ErrIncompatibleCheckpoint is wrapped when a checkpoint belongs to another
// configuration.
var ErrIncompatibleCheckpoint = errors.New("checkpoint from another configuration")

func (c *checkpoint) marshal() ([]byte, error) {
	meta, err := json.Marshal(c.checkpointMeta)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(ckptMagic)
	binary.Write(&b, binary.LittleEndian, uint32(ckptVersion))
	for _, part := range [][]byte{meta, c.CMA, c.BestCMA} {
		binary.Write(&b, binary.LittleEndian, uint64(len(part)))
		b.Write(part)
	}
	binary.Write(&b, binary.LittleEndian, crc32.Checksum(b.Bytes(), ckptCRC))
	return b.Bytes(), nil
}

func unmarshalCheckpoint(data []byte) (*checkpoint, error) {
	if len(data) < len(ckptMagic)+4+3*8+4 {
		return nil, fmt.Errorf("%w: %d bytes, too short", ErrCorruptCheckpoint, len(data))
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, ckptCRC), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, stored %08x", ErrCorruptCheckpoint, got, want)
	}
	if string(body[:len(ckptMagic)]) != ckptMagic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrCorruptCheckpoint, body[:len(ckptMagic)], ckptMagic)
	}
	body = body[len(ckptMagic):]
	if v := binary.LittleEndian.Uint32(body); v != ckptVersion {
		return nil, fmt.Errorf("checkpoint format version %d, this build reads %d", v, ckptVersion)
	}
	body = body[4:]
	var parts [3][]byte
	for i := range parts {
		if len(body) < 8 {
			return nil, fmt.Errorf("%w: truncated part %d", ErrCorruptCheckpoint, i)
		}
		n := binary.LittleEndian.Uint64(body)
		body = body[8:]
		if n > uint64(len(body)) {
			return nil, fmt.Errorf("%w: part %d has %d bytes, %d left", ErrCorruptCheckpoint, i, n, len(body))
		}
		parts[i], body = body[:n], body[n:]
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptCheckpoint, len(body))
	}
	c := &checkpoint{CMA: parts[1]}
	if len(parts[2]) > 0 {
		c.BestCMA = parts[2]
	}
	if err := json.Unmarshal(parts[0], &c.checkpointMeta); err != nil {
		return nil, fmt.Errorf("%w: meta: %v", ErrCorruptCheckpoint, err)
	}
	return c, nil
}

func checkpointPath(dir string, seq int) string {
	return filepath.Join(dir, fmt.Sprintf("%s%08d%s", ckptPrefix, seq, ckptSuffix))
}

// saveCheckpoint writes c atomically as checkpoint-<seq>.ckpt and removes
// all but the two newest checkpoints.
func saveCheckpoint(dir string, c *checkpoint) error {
	data, err := c.marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(checkpointPath(dir, c.Seq), data); err != nil {
		return err
	}
	seqs, err := listCheckpoints(dir)
	if err != nil {
		return err
	}
	for _, s := range seqs {
		if s < c.Seq-1 {
			if err := os.Remove(checkpointPath(dir, s)); err != nil {
				return fmt.Errorf("remove old checkpoint: %w", err)
			}
		}
	}
	return nil
}

// listCheckpoints returns the sequence numbers of the checkpoint files in
// dir, newest first.
func listCheckpoints(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []int
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, ckptPrefix) || !strings.HasSuffix(name, ckptSuffix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, ckptPrefix), ckptSuffix))
		if err != nil {
			continue
		}
		seqs = append(seqs, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(seqs)))
	return seqs, nil
}

// loadCheckpoint returns the newest valid checkpoint in dir (nil if there is
// none). Corrupt files are skipped, each reported through warn; a checkpoint
// of another identity is refused with the differences named.
func loadCheckpoint(dir string, want Identity, warn func(string)) (*checkpoint, error) {
	seqs, err := listCheckpoints(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var bad []string
	for _, s := range seqs {
		path := checkpointPath(dir, s)
		data, err := os.ReadFile(path)
		if err == nil {
			var c *checkpoint
			if c, err = unmarshalCheckpoint(data); err == nil {
				if d := c.Identity.Diff(want); len(d) > 0 {
					return nil, fmt.Errorf("%s: %w: %s", path, ErrIncompatibleCheckpoint, strings.Join(d, "; "))
				}
				if c.Seq != s {
					err = fmt.Errorf("%w: file number %d holds sequence %d", ErrCorruptCheckpoint, s, c.Seq)
				} else {
					return c, nil
				}
			}
		}
		warn(fmt.Sprintf("skipping checkpoint %s: %v", path, err))
		bad = append(bad, filepath.Base(path))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: no usable checkpoint in %s (%s)", ErrCorruptCheckpoint, dir, strings.Join(bad, ", "))
	}
	return nil, nil
}
