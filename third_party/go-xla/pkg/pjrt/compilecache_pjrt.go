package pjrt

// namm patch (third_party/go-xla/NAMM_PATCH.md): serializing a compiled executable, loading one
// back, and the use CompileConfig.Done makes of them with the persistent cache of compilecache.go.

/*
#include "pjrt_c_api.h"
#include "gen_api_calls.h"
#include "gen_new_struct.h"

// freeSerializedExecutable releases what PJRT_Executable_Serialize allocated (it backs serialized_bytes).
static void freeSerializedExecutable(PJRT_Executable_Serialize_Args* args) {
	if (args->serialized_executable_deleter != NULL && args->serialized_executable != NULL) {
		args->serialized_executable_deleter(args->serialized_executable);
	}
}
*/
import "C"
import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/pkg/errors"
	"google.golang.org/protobuf/proto"
	"k8s.io/klog/v2"
)

// Serialize returns the plugin's serialization of the compiled executable: opaque bytes that
// Client.DeserializeAndLoad loads back on a client of the same plugin build and devices. PJRT does
// not promise they load on anything else.
func (e *Executable) Serialize() ([]byte, error) {
	if e == nil || !e.wrapper.IsValid() {
		return nil, errors.New("Executable is nil, or its plugin or wrapped C representation is nil -- has it been destroyed already?")
	}
	defer runtime.KeepAlive(e)
	args := C.new_PJRT_Executable_Serialize_Args()
	defer cFree(args)
	args.executable = e.wrapper.c
	err := toError(e.wrapper.plugin, C.call_PJRT_Executable_Serialize(e.wrapper.plugin.api, args))
	if err != nil {
		return nil, errors.WithMessagef(err, "failed to serialize the executable")
	}
	defer C.freeSerializedExecutable(args)
	return slices.Clone(cDataToSlice[byte](unsafe.Pointer(args.serialized_bytes), int(args.serialized_bytes_size))), nil
}

// Serialize returns the plugin's serialization of the executable (see Executable.Serialize).
func (e *LoadedExecutable) Serialize() ([]byte, error) {
	if e == nil || e.plugin == nil || e.wrapper == nil {
		return nil, errors.New("LoadedExecutable is nil, or its plugin or wrapped C representation is nil -- has it been destroyed already?")
	}
	defer runtime.KeepAlive(e)
	return e.executable.Serialize()
}

// pjrtExecutableDeserializeAndLoad loads a serialized executable with the compile options it was
// serialized with, through newLoadedExecutable as a compiled one is: its name, number of outputs and
// memory statistics are read the same way. The layout go-xla keeps (replicas, partitions, device
// assignment, portability) is left to the caller.
func pjrtExecutableDeserializeAndLoad(plugin *Plugin, client *Client, serialized []byte) (*LoadedExecutable, error) {
	if len(serialized) == 0 {
		return nil, errors.New("no serialized executable given")
	}
	var pinner runtime.Pinner
	defer pinner.Unpin()
	pinner.Pin(unsafe.SliceData(serialized))

	args := C.new_PJRT_Executable_DeserializeAndLoad_Args()
	defer cFree(args)
	args.client = client.client.c
	args.serialized_executable = (*C.char)(unsafe.Pointer(unsafe.SliceData(serialized)))
	args.serialized_executable_size = C.size_t(len(serialized))
	err := toError(plugin, C.call_PJRT_Executable_DeserializeAndLoad(plugin.api, args))
	runtime.KeepAlive(serialized)
	if err != nil {
		return nil, err
	}
	return newLoadedExecutable(plugin, client, args.loaded_executable)
}

// DeserializeAndLoad loads an executable that LoadedExecutable.Serialize returned on a client of
// the same plugin build and devices; PJRT refuses others, or worse, so key stored executables on
// both, as CompileConfig.Done's cache does. PJRT restores the compile options the executable was
// compiled with.
//
// go-xla's own record of how to dispatch an executable is not in the serialization: the result is
// set up as a portable single-device executable, the layout Client.Compile gives without WithSPMD,
// WithShardy or WithDeviceAssignment. Executables of other layouts are reloaded only by
// CompileConfig.Done's cache, which knows the layout it compiled.
func (c *Client) DeserializeAndLoad(serialized []byte) (*LoadedExecutable, error) {
	exec, err := pjrtExecutableDeserializeAndLoad(c.plugin, c, serialized)
	if err != nil {
		return nil, errors.WithMessagef(err, "failed to load the serialized executable")
	}
	exec.numReplicas, exec.numPartitions = 1, 1
	exec.isPortable = true
	return exec, nil
}

// compileCacheKey is the key of the program being compiled on this client.
func (cc *CompileConfig) compileCacheKey() ([32]byte, error) {
	options, err := proto.MarshalOptions{Deterministic: true}.Marshal(cc.options)
	if err != nil {
		return [32]byte{}, err
	}
	major, minor := cc.plugin.Version()
	k := compileCacheKey{
		PluginName:       cc.plugin.Name(),
		PluginPath:       cc.plugin.Path(),
		PluginFile:       pluginFileIdentity(cc.plugin.Path()),
		PluginAPIVersion: fmt.Sprintf("%d.%d", major, minor),
		PluginAttributes: cc.plugin.Attributes(),
		Platform:         cc.client.Platform(),
		PlatformVersion:  cc.client.PlatformVersion(),
		XLAFlags:         os.Getenv("XLA_FLAGS"),
		ProgramFormat:    cc.programFormat,
		Program:          cc.program,
		CompileOptions:   options,
	}
	for _, device := range cc.client.AddressableDevices() {
		kind := "unknown"
		if desc, err := device.GetDescription(); err == nil {
			if s, err := desc.Kind(); err == nil {
				kind = s
			}
		}
		k.DeviceKinds = append(k.DeviceKinds, kind)
	}
	return k.Sum(), nil
}

// compileCacheWarned makes the first problem of a process with the cache (PJRT refusing an entry,
// failing to serialize, a failed write) a warning: a cache that never hits looks like no cache.
// Later ones, and every hit and write, are logged at verbosity 1.
var compileCacheWarned atomic.Bool

func compileCacheProblem(format string, args ...any) {
	if compileCacheWarned.CompareAndSwap(false, true) {
		klog.Warningf(format+" (further problems of the compile cache are logged at -v=1)", args...)
		return
	}
	klog.V(1).Infof(format, args...)
}

// loadCached returns the cached executable of key, or nil on a miss. An entry PJRT refuses (another
// plugin build, a stale or damaged serialization) is removed: the program is compiled again and its
// entry rewritten.
func (cc *CompileConfig) loadCached(cache *compileCache, key [32]byte) *LoadedExecutable {
	payload, ok := cache.get(key)
	if !ok {
		return nil
	}
	exec, err := pjrtExecutableDeserializeAndLoad(cc.plugin, cc.client, payload)
	if err != nil {
		compileCacheProblem("compile cache: the plugin refused %s, compiling instead: %v", cache.path(key), err)
		cache.remove(key)
		return nil
	}
	klog.V(1).Infof("compile cache: loaded %s (%d bytes)", cache.path(key), len(payload))
	return exec
}

// storeCached writes exec's serialization under key. A failure leaves the cache without the
// entry and the compilation's result as it is.
func (cc *CompileConfig) storeCached(cache *compileCache, key [32]byte, exec *LoadedExecutable) {
	payload, err := exec.Serialize()
	if err != nil {
		compileCacheProblem("compile cache: cannot serialize %q: %v", exec.Name, err)
		return
	}
	if err := cache.put(key, payload); err != nil {
		compileCacheProblem("compile cache: cannot write %s: %v", cache.path(key), err)
		return
	}
	klog.V(1).Infof("compile cache: wrote %s (%d bytes)", cache.path(key), len(payload))
}
