package redisstore

import (
	"context"
	_ "embed" // the scripts are embedded .lua files
	"strings"

	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/store"
)

var (
	//go:embed sliding_window.lua
	slidingWindowSrc string
	//go:embed sliding_counter.lua
	slidingCounterSrc string
	//go:embed gcra.lua
	gcraSrc string
	//go:embed reply.lua
	replySrc string
	//go:embed stack.lua
	stackSrc string
	//go:embed undo.lua
	undoSrc string
	//go:embed lock_acquire.lua
	lockAcquireSrc string
	//go:embed lock_release.lua
	lockReleaseSrc string
	//go:embed lock_extend.lua
	lockExtendSrc string
	//go:embed lock_ttl.lua
	lockTTLSrc string
	//go:embed peek.lua
	peekSrc string
	//go:embed del.lua
	delSrc string
	//go:embed lock_inspect.lua
	lockInspectSrc string
)

// scriptMarker ends the functions of an algorithm's script (sliding_window.lua,
// sliding_counter.lua, gcra.lua): what follows it is the script proper, what
// precedes it is also put before stack.lua, undo.lua and peek.lua, so that
// each algorithm's logic is written once.
const scriptMarker = "\n--- script ---\n"

// functions returns the part of an algorithm's script before scriptMarker.
func functions(src string) string {
	i := strings.Index(src, scriptMarker)
	if i < 0 {
		panic("redisstore: an algorithm's script lacks its " + strings.TrimSpace(scriptMarker) + " line")
	}
	return src[:i+1]
}

// algorithmFunctions is the functions of every algorithm, in one source.
var algorithmFunctions = functions(slidingWindowSrc) + functions(slidingCounterSrc) + functions(gcraSrc)

// The Store's scripts; each .lua file opens with its KEYS, ARGV and reply.
// lua.Command runs them with EVALSHA and falls back to EVAL on NOSCRIPT.
var (
	slidingWindow  = mustCommand("sluice_sliding_window", 1, replySrc+slidingWindowSrc)
	slidingCounter = mustCommand("sluice_sliding_counter", 1, slidingCounterSrc)
	gcra           = mustCommand("sluice_gcra", 1, replySrc+gcraSrc)
	stack          = mustCommand("sluice_stack", lua.AnyKeys, algorithmFunctions+stackSrc)
	windowUndo     = mustCommand("sluice_undo", lua.AnyKeys, algorithmFunctions+undoSrc)
	lockAcquire    = mustCommand("sluice_lock_acquire", 2, lockAcquireSrc)
	lockRelease    = mustCommand("sluice_lock_release", 1, lockReleaseSrc)
	lockExtend     = mustCommand("sluice_lock_extend", 1, lockExtendSrc)
	lockTTL        = mustCommand("sluice_lock_ttl", 1, lockTTLSrc)

	windowPeek  = mustCommand("sluice_peek", 1, algorithmFunctions+peekSrc)
	lockInspect = mustCommand("sluice_lock_inspect", 2, lockInspectSrc)
	del         = mustCommand("sluice_del", 1, delSrc) // Reset and ForceRelease

	scripts = []*lua.Command{slidingWindow, slidingCounter, gcra, stack, windowUndo,
		lockAcquire, lockRelease, lockExtend, lockTTL,
		windowPeek, lockInspect, del}
)

// hitScripts is the script of Hit for each algorithm.
var hitScripts = [...]*lua.Command{
	store.SlidingLog:     slidingWindow,
	store.SlidingCounter: slidingCounter,
	store.GCRA:           gcra,
}

// algorithmCodes names each algorithm to stack.lua and undo.lua; the same
// letter sets the states of the algorithms apart in their Redis keys.
var algorithmCodes = [...]string{
	store.SlidingLog:     "s",
	store.SlidingCounter: "c",
	store.GCRA:           "g",
}

func mustCommand(name string, keys int, src string) *lua.Command {
	c, err := lua.NewCommand(name, keys, src)
	if err != nil {
		panic(err) // only for the embedded scripts, which are never empty
	}
	return c
}

// Preload caches the Store's scripts on the server with SCRIPT LOAD: on every
// master of a Redis Cluster, every shard of a Ring, or the one server
// otherwise. Call it at start-up so that the first decisions do not pay for a
// NOSCRIPT reply and an EVAL; it is not required for correctness, since every
// call recovers from NOSCRIPT (after a restart, a failover or SCRIPT FLUSH) by
// itself. WithTimeout does not apply to Preload: give ctx a deadline, as for
// any start-up call.
func (s *Store) Preload(ctx context.Context) error {
	if err := lua.Preload(ctx, s.client, scripts...); err != nil {
		return opError("preload", err)
	}
	return nil
}
