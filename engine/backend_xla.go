//go:build !noxla

package engine

// The XLA backend runs graphs on a GPU through a PJRT plugin given by path
// (--backend xla:PATH); build with -tags noxla to leave it out.
import (
	"errors"

	"github.com/gomlx/go-xla/pkg/pjrt"
	_ "github.com/gomlx/gomlx/backends/xla"
)

// xlaBuilt reports whether this binary has the XLA backend.
const xlaBuilt = true

// deviceFreeMemory is what the XLA device's allocator has left to hand out
// (its limit less what is in use), as PJRT reports it for the newest
// client's first device: the one gomlx's backend runs on.
func deviceFreeMemory() (int64, error) {
	cs := pjrt.Clients()
	if len(cs) == 0 {
		return 0, errors.New("no PJRT client")
	}
	devs := cs[len(cs)-1].AddressableDevices()
	if len(devs) == 0 {
		return 0, errors.New("the PJRT client has no device")
	}
	m, err := devs[0].MemoryStats()
	if err != nil {
		return 0, err
	}
	if !m.LimitSet {
		return 0, errors.New("the PJRT plugin reports no memory limit")
	}
	return m.Free(), nil
}
