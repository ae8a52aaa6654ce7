package torchzip

import (
	"archive/zip"
	"fmt"
	"io"
	"testing"
)

// fakeStorage serves zero bytes for any small storage, so fuzzed pickles can rebuild tensors.
func fakeStorage(key string, nbytes int64) ([]byte, error) {
	if nbytes > 1<<16 {
		return nil, fmt.Errorf("storage %q too large for the fuzzer", key)
	}
	return make([]byte, nbytes), nil
}

// FuzzLoad runs arbitrary data.pkl bytes through the unpickler and tensor rebuild:
// any input must give a value or an error, never a panic or runaway memory.
func FuzzLoad(f *testing.F) {
	f.Add(handmadePickle())
	if zr, err := zip.OpenReader(fixture); err == nil {
		for _, zf := range zr.File {
			if zf.Name == "archive/data.pkl" {
				rc, _ := zf.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				f.Add(b)
			}
		}
		zr.Close()
	}
	for _, s := range []string{
		"\x80\x02]q\x00h\x00a.",
		"\x80\x02cmy.module\nThing\nq\x00K\x01\x85q\x01Rq\x02}q\x03X\x01\x00\x00\x00aK\x02sb.",
		"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94\x8c\x01b\x94\x93.",
		"(I1\nF2.5\nS'x'\nVy\\u00e9\nL5L\nl.",
		"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\nctorch._utils\n_rebuild_tensor_v2\nN)}t.",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := unpickle(data, fakeStorage, false)
		if err != nil {
			return
		}
		Find(v, "mean")
		Lookup(v, "evolution_state", "mean")
	})
}
