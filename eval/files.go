package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/namm-dev/namm/internal/atomicfile"
	"io"
	"io/fs"
	"os"
)

// writeJSONAtomic writes v as indented JSON.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(data, '\n'))
}

// Journal is the append-only record of finished samples (one JSON object
// per line, each synced to disk before the next sample starts), read back
// to resume an interrupted run.
type Journal struct {
	path string
	f    *os.File
}

// OpenJournal reads the finished results of path (none if it does not exist)
// and opens it for appending. A last line cut short by a crash is dropped
// (the file is truncated to the last complete line); any other bad line is an
// error naming path:LINE.
func OpenJournal(path string) (*Journal, []SampleResult, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	var done []SampleResult
	complete := len(data)
	if i := bytes.LastIndexByte(data, '\n'); i+1 != len(data) {
		complete = i + 1 // an unterminated tail is a write cut short
	}
	sc := bufio.NewScanner(bytes.NewReader(data[:complete]))
	sc.Buffer(nil, 1<<30)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r SampleResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, nil, fmt.Errorf("journal %s:%d: %w (delete the file to start over)", path, line, err)
		}
		done = append(done, r)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	if err := f.Truncate(int64(complete)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{path: path, f: f}, done, nil
}

// Append writes one result as a line and syncs it to disk.
func (j *Journal) Append(r SampleResult) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if _, err := j.f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.f.Close() }
