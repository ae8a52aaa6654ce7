// Package train builds training data for the project's own small base
// language models and trains them: a token file of fixed-length sequences
// (haystack texts plus synthetic long-context task examples) that
// scripts/gpu/train_base.py (PyTorch, GPU) and Train (GoMLX, CPU) both read.
package train

import (
	"encoding/binary"
	"fmt"
	"github.com/namm-dev/namm/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
)

// Token file layout (all little-endian):
//
//	offset  size  field
//	0       8     magic "NAMMTOKS"
//	8       4     version (1)
//	12      4     vocabulary size
//	16      4     sequence length L
//	20      4     bytes per token: 2 (uint16, vocabulary < 65536) or 4 (uint32)
//	24      8     number of sequences
//	32      4     BOS id (int32, -1 if none)
//	36      4     EOS id (int32, -1 if none)
//	40      24    zero
//	64      ...   count*L tokens, row-major [count, L]
const (
	TokenFileMagic   = "NAMMTOKS"
	TokenFileVersion = 1
	TokenHeaderSize  = 64
)

// TokenHeader describes a token file.
type TokenHeader struct {
	VocabSize  int
	SeqLen     int
	TokenBytes int // 2 or 4
	Count      int // number of sequences
	BOS, EOS   int // -1 when the tokenizer has none
}

// TokenBytesFor is the token width for a vocabulary: 2 bytes below 65536 ids, else 4.
func TokenBytesFor(vocab int) int {
	if vocab < 1<<16 {
		return 2
	}
	return 4
}

func (h TokenHeader) encode() []byte {
	b := make([]byte, TokenHeaderSize)
	copy(b, TokenFileMagic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], TokenFileVersion)
	le.PutUint32(b[12:], uint32(h.VocabSize))
	le.PutUint32(b[16:], uint32(h.SeqLen))
	le.PutUint32(b[20:], uint32(h.TokenBytes))
	le.PutUint64(b[24:], uint64(h.Count))
	le.PutUint32(b[32:], uint32(int32(h.BOS)))
	le.PutUint32(b[36:], uint32(int32(h.EOS)))
	return b
}

// ParseTokenHeader decodes and validates a token file header; name is used in errors.
func ParseTokenHeader(b []byte, name string) (TokenHeader, error) {
	if len(b) < TokenHeaderSize {
		return TokenHeader{}, fmt.Errorf("%s: token file header is %d bytes, want %d", name, len(b), TokenHeaderSize)
	}
	if string(b[:8]) != TokenFileMagic {
		return TokenHeader{}, fmt.Errorf("%s: not a token file (magic %q, want %q)", name, b[:8], TokenFileMagic)
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[8:]); v != TokenFileVersion {
		return TokenHeader{}, fmt.Errorf("%s: token file version %d, want %d", name, v, TokenFileVersion)
	}
	h := TokenHeader{
		VocabSize:  int(le.Uint32(b[12:])),
		SeqLen:     int(le.Uint32(b[16:])),
		TokenBytes: int(le.Uint32(b[20:])),
		BOS:        int(int32(le.Uint32(b[32:]))),
		EOS:        int(int32(le.Uint32(b[36:]))),
	}
	count := le.Uint64(b[24:])
	switch {
	case h.VocabSize <= 0:
		return h, fmt.Errorf("%s: header field vocab_size is 0", name)
	case h.SeqLen <= 0:
		return h, fmt.Errorf("%s: header field seq_len is 0", name)
	case h.TokenBytes != TokenBytesFor(h.VocabSize):
		return h, fmt.Errorf("%s: header field token_bytes is %d, want %d for vocabulary %d", name, h.TokenBytes, TokenBytesFor(h.VocabSize), h.VocabSize)
	case count > 1<<40:
		return h, fmt.Errorf("%s: header field count %d is implausible", name, count)
	}
	h.Count = int(count)
	return h, nil
}

// TokenFile is a token file held in memory.
type TokenFile struct {
	TokenHeader
	data []byte // Count*SeqLen*TokenBytes
	// Roles, when set, holds one Role* byte per token; Write saves it beside
	// the file as PATH.roles for the trainer's loss weights.
	Roles []byte
}

// NewTokenFile allocates an all-zero file of count sequences.
func NewTokenFile(h TokenHeader) *TokenFile {
	h.TokenBytes = TokenBytesFor(h.VocabSize)
	return &TokenFile{TokenHeader: h, data: make([]byte, h.Count*h.SeqLen*h.TokenBytes)}
}

// SetSeq stores sequence i; ids must have SeqLen entries, each in [0, VocabSize).
func (f *TokenFile) SetSeq(i int, ids []int) error {
	if len(ids) != f.SeqLen {
		return fmt.Errorf("sequence %d has %d tokens, want %d", i, len(ids), f.SeqLen)
	}
	off := i * f.SeqLen * f.TokenBytes
	for j, id := range ids {
		if id < 0 || id >= f.VocabSize {
			return fmt.Errorf("sequence %d position %d: token %d outside the vocabulary [0, %d)", i, j, id, f.VocabSize)
		}
		if f.TokenBytes == 2 {
			binary.LittleEndian.PutUint16(f.data[off+2*j:], uint16(id))
		} else {
			binary.LittleEndian.PutUint32(f.data[off+4*j:], uint32(id))
		}
	}
	return nil
}

// Seq returns sequence i.
func (f *TokenFile) Seq(i int) []int {
	out := make([]int, f.SeqLen)
	off := i * f.SeqLen * f.TokenBytes
	for j := range out {
		if f.TokenBytes == 2 {
			out[j] = int(binary.LittleEndian.Uint16(f.data[off+2*j:]))
		} else {
			out[j] = int(binary.LittleEndian.Uint32(f.data[off+4*j:]))
		}
	}
	return out
}

// Write saves the file atomically (temporary file in the same directory, then rename).
func (f *TokenFile) Write(path string) error {
	if f.Roles != nil {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if err := writeAtomic(path+".roles", func(w io.Writer) error {
			_, err := w.Write(f.Roles)
			return err
		}); err != nil {
			return err
		}
	}
	return writeAtomic(path, func(w io.Writer) error {
		if _, err := w.Write(f.encode()); err != nil {
			return err
		}
		_, err := w.Write(f.data)
		return err
	})
}

// ReadTokenFile reads a whole token file, checking its size against the header.
func ReadTokenFile(path string) (*TokenFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	h, err := ParseTokenHeader(data, path)
	if err != nil {
		return nil, err
	}
	want := TokenHeaderSize + h.Count*h.SeqLen*h.TokenBytes
	if len(data) != want {
		return nil, fmt.Errorf("%s: %d bytes, header implies %d (%d sequences of %d tokens)", path, len(data), want, h.Count, h.SeqLen)
	}
	f := &TokenFile{TokenHeader: h, data: data[TokenHeaderSize:]}
	for i := 0; i < h.Count*h.SeqLen; i++ {
		var id int
		if h.TokenBytes == 2 {
			id = int(binary.LittleEndian.Uint16(f.data[2*i:]))
		} else {
			id = int(binary.LittleEndian.Uint32(f.data[4*i:]))
		}
		if id >= h.VocabSize {
			return nil, fmt.Errorf("%s: sequence %d position %d: token %d outside the vocabulary [0, %d)", path, i/h.SeqLen, i%h.SeqLen, id, h.VocabSize)
		}
	}
	return f, nil
}

func writeAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.Write(path, write); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}
