package limiter

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/sluicehq/sluice/store"
)

// The registry remembers which names are in use on which store, so that two
// live limiters never share counters by accident. A name is taken by New and
// given back by Close, and by nothing else: whether a name is free never
// depends on the garbage collector.
var registry struct {
	mu     sync.Mutex
	stores map[any]map[string]*Limiter
}

// register records l's name on l's store, failing with ErrNameInUse if an
// open limiter already holds it. Stores whose dynamic value is not comparable
// cannot be map keys and are not checked.
func register(l *Limiter) error {
	if !reflect.ValueOf(l.st).Comparable() {
		return nil
	}
	var key any = l.st
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.stores == nil {
		registry.stores = make(map[any]map[string]*Limiter)
	}
	names := registry.stores[key]
	if names == nil {
		names = make(map[string]*Limiter)
		registry.stores[key] = names
	}
	if _, ok := names[l.name]; ok {
		return fmt.Errorf("%w: %q (Close the limiter that holds it first)", ErrNameInUse, l.name)
	}
	names[l.name] = l
	return nil
}

// unregister gives l's name back.
func unregister(l *Limiter) {
	if !reflect.ValueOf(l.st).Comparable() {
		return
	}
	var key any = l.st
	registry.mu.Lock()
	defer registry.mu.Unlock()
	names := registry.stores[key]
	if names[l.name] == l {
		delete(names, l.name)
	}
	if len(names) == 0 {
		delete(registry.stores, key)
	}
}

// inProcess reports whether s answers from process memory without I/O (see
// store.InProcess), so that a per-decision deadline would cost a timer per
// request and buy nothing.
func inProcess(s store.WindowStore) bool {
	ip, ok := s.(store.InProcess)
	return ok && ip.InProcess()
}
