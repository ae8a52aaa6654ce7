package pjrt

// namm patch: a device's memory statistics (PJRT_Device_MemoryStats) and
// the live clients of the process, so that a caller that reaches PJRT
// through another library (gomlx's xla backend keeps its client private)
// can ask how much device memory is left before it allocates a batch.

/*
#include "pjrt_c_api.h"
#include "gen_api_calls.h"
#include "gen_new_struct.h"
*/
import "C"

import (
	"sync"
	"weak"
)

// DeviceMemory is what PJRT reports of a device's memory. A field whose
// plugin does not report it is 0 (Limit: LimitSet false).
type DeviceMemory struct {
	InUse    int64 // bytes allocated now
	Limit    int64 // the bytes the allocator may hand out in all
	LimitSet bool
}

// Free is Limit - InUse, or -1 when the plugin reports no limit.
func (m DeviceMemory) Free() int64 {
	if !m.LimitSet {
		return -1
	}
	return m.Limit - m.InUse
}

// MemoryStats asks PJRT for the device's memory statistics. Plugins that do
// not implement it return an error.
func (d *Device) MemoryStats() (DeviceMemory, error) {
	args := C.new_PJRT_Device_MemoryStats_Args()
	defer cFree(args)
	args.device = d.cDevice
	if err := toError(d.plugin, C.call_PJRT_Device_MemoryStats(d.plugin.api, args)); err != nil {
		return DeviceMemory{}, err
	}
	m := DeviceMemory{InUse: int64(args.bytes_in_use)}
	if bool(args.bytes_limit_is_set) {
		m.Limit, m.LimitSet = int64(args.bytes_limit), true
	}
	return m, nil
}

var (
	clientsMu sync.Mutex
	clients   []weak.Pointer[Client]
)

// registerClient remembers a new client (weakly: it is still collected and
// destroyed when its owner drops it).
func registerClient(c *Client) {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	live := clients[:0]
	for _, w := range clients {
		if w.Value() != nil {
			live = append(live, w)
		}
	}
	clients = append(live, weak.Make(c))
}

// Clients returns the process's clients that are still valid, oldest first.
func Clients() []*Client {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	var out []*Client
	for _, w := range clients {
		if c := w.Value(); c.IsValid() {
			out = append(out, c)
		}
	}
	return out
}
