package evolve

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/namm-dev/namm/task/gen"
)

// ValSeedOffset is added to a training spec's seed to make its validation
// spec: a different seed gives different samples (checked: a validation
// prompt equal to a training prompt is an error).
const ValSeedOffset = 1_000_003

// Stage is one curriculum stage: its tasks' training and validation pools,
// in the order given.
type Stage struct {
	Train []gen.Spec
	Val   []gen.Spec
}

// ParseStage reads a comma-separated list of generator specs (gen.ParseSpec),
// e.g. "niah_single:len=2048,vartrack:len=2048". A spec without n= gets a
// training pool of poolSize prompts; a task with a haystack split option and
// no split= gets split=train (the validation pool keeps that split, with
// seed + ValSeedOffset and valSamples prompts).
func ParseStage(list string, poolSize, valSamples int) (Stage, error) {
	var st Stage
	seen := map[string]bool{}
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return st, fmt.Errorf("stage %q: empty task spec", list)
		}
		spec, err := gen.ParseSpec(raw)
		if err != nil {
			return st, fmt.Errorf("stage %q: %w", list, err)
		}
		if !hasField(raw, "n") {
			spec.N = poolSize
		}
		if hasOption(spec.Task, "split") && spec.Options["split"] == "" {
			opts := map[string]string{"split": "train"}
			for k, v := range spec.Options {
				opts[k] = v
			}
			spec.Options = opts
		}
		if err := spec.Validate(); err != nil {
			return st, fmt.Errorf("stage %q: task %q: %w", list, raw, err)
		}
		key := spec.String()
		if seen[key] {
			return st, fmt.Errorf("stage %q: task %s given twice", list, key)
		}
		seen[key] = true
		val := spec
		val.Seed += ValSeedOffset
		val.N = valSamples
		st.Train = append(st.Train, spec)
		st.Val = append(st.Val, val)
	}
	return st, nil
}

// hasField reports whether a raw spec sets key= explicitly.
func hasField(raw, key string) bool {
	for _, p := range strings.Split(raw, ":")[1:] {
		if k, _, _ := strings.Cut(p, "="); k == key {
			return true
		}
	}
	return false
}

func hasOption(task, key string) bool {
	for _, t := range gen.Tasks() {
		if t.Name == task {
			for _, o := range t.Options {
				if o.Key == key {
					return true
				}
			}
		}
	}
	return false
}

// SampleStore generates the samples of task specs once and keeps them. It is
// safe for concurrent use; concurrent requests for one spec generate once.
type SampleStore struct {
	tok gen.Counter
	mu  sync.Mutex
	m   map[string]*storeEntry
}

type storeEntry struct {
	once    sync.Once
	samples []gen.Sample
	err     error
}

// NewSampleStore returns a store that measures prompts with tok.
func NewSampleStore(tok gen.Counter) *SampleStore {
	return &SampleStore{tok: tok, m: map[string]*storeEntry{}}
}

// Get returns the samples of a canonical spec string (gen.Spec.String).
func (s *SampleStore) Get(spec string) ([]gen.Sample, error) {
	s.mu.Lock()
	e := s.m[spec]
	if e == nil {
		e = &storeEntry{}
		s.m[spec] = e
	}
	s.mu.Unlock()
	e.once.Do(func() {
		sp, err := gen.ParseSpec(spec)
		if err != nil {
			e.err = err
			return
		}
		e.samples, e.err = gen.Generate(sp, s.tok)
	})
	return e.samples, e.err
}

// Sample returns sample i of spec.
func (s *SampleStore) Sample(spec string, i int) (gen.Sample, error) {
	samples, err := s.Get(spec)
	if err != nil {
		return gen.Sample{}, err
	}
	if i < 0 || i >= len(samples) {
		return gen.Sample{}, fmt.Errorf("sample %d of %s out of range (%d samples)", i, spec, len(samples))
	}
	return samples[i], nil
}

// checkDisjoint returns an error when a validation prompt equals a training
// prompt.
func checkDisjoint(store *SampleStore, st Stage) error {
	train := map[[32]byte]string{}
	for _, sp := range st.Train {
		samples, err := store.Get(sp.String())
		if err != nil {
			return err
		}
		for _, s := range samples {
			train[sha256.Sum256([]byte(s.Prompt))] = s.ID
		}
	}
	for _, sp := range st.Val {
		samples, err := store.Get(sp.String())
		if err != nil {
			return err
		}
		for _, s := range samples {
			if id, ok := train[sha256.Sum256([]byte(s.Prompt))]; ok {
				return fmt.Errorf("validation sample %s has the same prompt as training sample %s: choose another seed", s.ID, id)
			}
		}
	}
	return nil
}

// DrawSamples returns k distinct indices into a pool of n prompts for task t
// at iteration iter: a pure function of (seed, iter, t), so a resumed run
// draws what an uninterrupted one draws. All members of a generation share
// the draw.
func DrawSamples(seed int64, iter, t, n, k int) []int {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], uint64(iter))
	binary.LittleEndian.PutUint64(b[16:], uint64(t))
	h := sha256.Sum256(b[:])
	r := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(h[0:]), binary.LittleEndian.Uint64(h[8:])))
	// Partial Fisher-Yates: the first k of a uniform permutation.
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	for i := 0; i < k; i++ {
		j := i + r.IntN(n-i)
		idx[i], idx[j] = idx[j], idx[i]
	}
	return idx[:k]
}
