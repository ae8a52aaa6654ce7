package safetensors

import (
	"encoding/binary"
	"testing"
)

var fuzzSeeds = []string{
	`{}`,
	`{"__metadata__":{"format":"pt"}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
	`{"a":{"dtype":"BF16","shape":[2,1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[],"data_offsets":[4,6]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
	`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[8,0]}}`,
	`{"a":{"dtype":"F99","shape":[9223372036854775807,2],"data_offsets":[0,8]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{}}`,
	`{"a":`,
	`[]`,
}

// FuzzParseHeader: any header and data length must give a result or an error,
// never a panic, and accepted headers must describe in-range, consistent tensors.
func FuzzParseHeader(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), int64(8))
	}
	f.Fuzz(func(t *testing.T, header []byte, dataLen int64) {
		if dataLen < 0 {
			dataLen = -dataLen
		}
		tensors, _, err := parseHeader(header, dataLen)
		if err != nil {
			return
		}
		for name, info := range tensors {
			n, err := numElements(info.Shape)
			if err != nil || info.Begin < 0 || info.Begin > info.End || info.End > dataLen ||
				n*int64(info.DType.Size()) != info.End-info.Begin {
				t.Fatalf("accepted inconsistent tensor %q: %+v", name, info)
			}
		}
	})
}

// FuzzOpen runs whole files (length prefix, header, data) through validation and reads.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(s)))
		f.Add(append(append(b, s...), make([]byte, 8)...))
	}
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := newFile("fuzz", b)
		if err != nil {
			return
		}
		for _, name := range file.Names() {
			if _, err := file.Raw(name); err != nil {
				t.Fatalf("Raw(%q) of an accepted file: %v", name, err)
			}
			file.Float32(name)
		}
		file.Close()
	})
}
