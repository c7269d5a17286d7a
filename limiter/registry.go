package limiter

import (
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"weak"

	"github.com/sluicehq/sluice/store"
)

// The registry remembers which names are in use on which store, so that two
// live limiters never share counters by accident. Entries hold the limiter
// weakly: a Limiter that is dropped without Close stops blocking its name as
// soon as the garbage collector finds it unreachable, and a runtime cleanup
// then removes the entry (and with the last name, the store) from the map.
// Close removes the entry at once.
var registry struct {
	mu     sync.Mutex
	stores map[any]map[string]weak.Pointer[Limiter]
}

// registration is a Limiter's entry in the registry.
type registration struct {
	entry   regEntry
	cleanup runtime.Cleanup
}

type regEntry struct {
	store any // the store value; nil when the store is not comparable
	name  string
	ptr   weak.Pointer[Limiter]
}

// register records l's name on l's store, failing with ErrNameInUse if a live
// limiter already holds it. Stores whose dynamic value is not comparable
// cannot be map keys and are not checked.
func register(l *Limiter) error {
	if !reflect.ValueOf(l.st).Comparable() {
		return nil
	}
	var key any = l.st
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.stores == nil {
		registry.stores = make(map[any]map[string]weak.Pointer[Limiter])
	}
	names := registry.stores[key]
	if names == nil {
		names = make(map[string]weak.Pointer[Limiter])
		registry.stores[key] = names
	}
	if old, ok := names[l.name]; ok && old.Value() != nil {
		return fmt.Errorf("%w: %q", ErrNameInUse, l.name)
	}
	wp := weak.Make(l)
	names[l.name] = wp
	l.reg.entry = regEntry{store: key, name: l.name, ptr: wp}
	l.reg.cleanup = runtime.AddCleanup(l, unregister, l.reg.entry)
	return nil
}

// unregister removes e from the registry if it is still the entry for its
// name (a newer limiter may have taken the name after e's was collected).
func unregister(e regEntry) {
	if e.store == nil {
		return
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	names := registry.stores[e.store]
	if cur, ok := names[e.name]; ok && cur == e.ptr {
		delete(names, e.name)
	}
	if len(names) == 0 {
		delete(registry.stores, e.store)
	}
}

// inProcess reports whether s answers from process memory without I/O (see
// store.InProcess), so that a per-decision deadline would cost a timer per
// request and buy nothing.
func inProcess(s store.WindowStore) bool {
	ip, ok := s.(store.InProcess)
	return ok && ip.InProcess()
}
