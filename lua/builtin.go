package lua

import (
	"context"
	_ "embed" // the scripts are embedded .lua files

	"github.com/redis/go-redis/v9"
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

var (
	slidingWindow = mustCommand("sluice_sliding_window", 1, slidingWindowSrc)
	windowUndo    = mustCommand("sluice_window_undo", 1, windowUndoSrc)
	lockAcquire   = mustCommand("sluice_lock_acquire", 2, lockAcquireSrc)
	lockRelease   = mustCommand("sluice_lock_release", 1, lockReleaseSrc)
	lockExtend    = mustCommand("sluice_lock_extend", 1, lockExtendSrc)
	lockTTL       = mustCommand("sluice_lock_ttl", 1, lockTTLSrc)
)

// SlidingWindow returns the exact sliding-window log script
// (sliding_window.lua): KEYS[1] the log; ARGV limit, window in microseconds,
// cost, a unique hit id, and now in microseconds or "" for Redis TIME. It
// replies {allowed, remaining, retry_after_us, reset_after_us}.
func SlidingWindow() *Command { return slidingWindow }

// WindowUndo returns the script that removes the hits of one SlidingWindow
// call (window_undo.lua): KEYS[1] the log; ARGV the hit id and cost. It replies
// the number of hits removed.
func WindowUndo() *Command { return windowUndo }

// LockAcquire returns the lock acquire script (lock_acquire.lua): KEYS[1] the
// lock, KEYS[2] its fence counter (same hash tag); ARGV token, TTL in ms and
// fence counter TTL in ms. It replies {1, fence} or {0, holder_pttl_ms}.
func LockAcquire() *Command { return lockAcquire }

// LockRelease returns the compare-and-delete script (lock_release.lua):
// KEYS[1] the lock; ARGV token. It replies 1 if released, 0 if not held.
func LockRelease() *Command { return lockRelease }

// LockExtend returns the compare-and-PEXPIRE script (lock_extend.lua): KEYS[1]
// the lock; ARGV token and TTL in ms. It replies 1 if extended, 0 if not held.
func LockExtend() *Command { return lockExtend }

// LockTTL returns the script that reads a held lock's TTL (lock_ttl.lua):
// KEYS[1] the lock; ARGV token. It replies the TTL in ms, or -1 if not held.
func LockTTL() *Command { return lockTTL }

// Builtin returns the scripts sluice's stores run, in a fixed order.
func Builtin() []*Command {
	return []*Command{slidingWindow, windowUndo, lockAcquire, lockRelease, lockExtend, lockTTL}
}

// Load caches every built-in script on the server with SCRIPT LOAD: on every
// master of a Redis Cluster, every shard of a Ring, or the one server otherwise.
// Call it at start-up so that the first decisions do not pay for a NOSCRIPT
// reply; it is not required for correctness.
func Load(ctx context.Context, client redis.Scripter) error {
	return loadScripts(ctx, client, Builtin())
}
