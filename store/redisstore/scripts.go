package redisstore

import (
	"context"
	_ "embed" // the scripts are embedded .lua files

	"github.com/sluicehq/sluice/lua"
)

var (
	//go:embed sliding_window.lua
	slidingWindowSrc string
	//go:embed window_undo.lua
	windowUndoSrc string
	//go:embed lock_acquire.lua
	lockAcquireSrc string
	//go:embed lock_release.lua
	lockReleaseSrc string
	//go:embed lock_extend.lua
	lockExtendSrc string
	//go:embed lock_ttl.lua
	lockTTLSrc string
)

// The Store's scripts; each .lua file opens with its KEYS, ARGV and reply.
// lua.Command runs them with EVALSHA and falls back to EVAL on NOSCRIPT.
var (
	slidingWindow = mustCommand("sluice_sliding_window", 1, slidingWindowSrc)
	windowUndo    = mustCommand("sluice_window_undo", 1, windowUndoSrc)
	lockAcquire   = mustCommand("sluice_lock_acquire", 2, lockAcquireSrc)
	lockRelease   = mustCommand("sluice_lock_release", 1, lockReleaseSrc)
	lockExtend    = mustCommand("sluice_lock_extend", 1, lockExtendSrc)
	lockTTL       = mustCommand("sluice_lock_ttl", 1, lockTTLSrc)

	scripts = []*lua.Command{slidingWindow, windowUndo, lockAcquire, lockRelease, lockExtend, lockTTL}
)

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
