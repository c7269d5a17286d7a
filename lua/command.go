package lua

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrInvalidCommand reports a command definition that cannot be used: an empty
// name or source, a key count below AnyKeys, or a name defined twice in a
// Registry.
var ErrInvalidCommand = errors.New("lua: invalid command")

// AnyKeys is the key count of a command that takes any number of keys (such as
// Reserve's stock counters). Keys of one call must still share a {hash tag} on
// Redis Cluster.
const AnyKeys = -1

// ErrKeyCount reports a call that passes a different number of keys than the
// command was defined with.
var ErrKeyCount = errors.New("lua: wrong number of keys")

// Command is a named Lua script that takes a fixed number of keys: the Go form
// of ioredis's defineCommand. Run sends EVALSHA and falls back to EVAL when the
// server answers NOSCRIPT (after a restart, a failover or SCRIPT FLUSH), so a
// flushed script cache never reaches the caller. A Command is safe for
// concurrent use. The zero value is not usable; create one with NewCommand or
// Registry.Define.
type Command struct {
	name   string
	keys   int
	src    string
	script *redis.Script
}

// NewCommand defines a command from Lua source that reads keys KEYS entries, or
// any number of them when keys is AnyKeys.
// Every key the script touches must be passed in KEYS, so that Redis Cluster can
// route the call; keys of one call must share a {hash tag} there.
func NewCommand(name string, keys int, src string) (*Command, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty name", ErrInvalidCommand)
	}
	if keys < AnyKeys {
		return nil, fmt.Errorf("%w: %s: key count %d is negative", ErrInvalidCommand, name, keys)
	}
	if src == "" {
		return nil, fmt.Errorf("%w: %s: empty source", ErrInvalidCommand, name)
	}
	return &Command{name: name, keys: keys, src: src, script: redis.NewScript(src)}, nil
}

// Name returns the command's name.
func (c *Command) Name() string { return c.name }

// Keys returns the number of keys every call passes, or AnyKeys.
func (c *Command) Keys() int { return c.keys }

// SHA returns the SHA1 digest of the source, under which Redis caches it.
func (c *Command) SHA() string { return c.script.Hash() }

// Source returns the Lua source.
func (c *Command) Source() string { return c.src }

// Script returns the go-redis script that runs the source.
func (c *Command) Script() *redis.Script { return c.script }

// Run calls the command with EVALSHA, retrying once with EVAL if the server
// does not have the script cached. A call with the wrong number of keys fails
// with ErrKeyCount before anything is sent.
func (c *Command) Run(ctx context.Context, client redis.Scripter, keys []string, args ...any) *redis.Cmd {
	if c.keys != AnyKeys && len(keys) != c.keys {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(fmt.Errorf("%w: %s takes %d keys, got %d", ErrKeyCount, c.name, c.keys, len(keys)))
		return cmd
	}
	return c.script.Run(ctx, client, keys, args...)
}

// Registry is a set of commands by name, to be defined once and preloaded at
// start-up. The zero value is an empty registry ready to use, as is the one
// NewRegistry returns. A Registry is safe for concurrent use.
type Registry struct {
	mu   sync.RWMutex
	cmds map[string]*Command
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{cmds: make(map[string]*Command)}
}

// Define adds a command built as NewCommand does. Defining a name twice is an
// error wrapping ErrInvalidCommand.
func (r *Registry) Define(name string, keys int, src string) (*Command, error) {
	c, err := NewCommand(name, keys, src)
	if err != nil {
		return nil, err
	}
	if err := r.Add(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Add adds commands that already exist, such as those NewCommand returns or
// another package exports. Adding a name that is already defined is an error
// wrapping ErrInvalidCommand, and then none of cmds is added.
func (r *Registry) Add(cmds ...*Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmds == nil {
		r.cmds = make(map[string]*Command)
	}
	seen := make(map[string]bool, len(cmds))
	for _, c := range cmds {
		if c == nil {
			return fmt.Errorf("%w: nil command", ErrInvalidCommand)
		}
		if _, dup := r.cmds[c.name]; dup || seen[c.name] {
			return fmt.Errorf("%w: %s is already defined", ErrInvalidCommand, c.name)
		}
		seen[c.name] = true
	}
	for _, c := range cmds {
		r.cmds[c.name] = c
	}
	return nil
}

// Lookup returns the command defined under name.
func (r *Registry) Lookup(name string) (*Command, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.cmds[name]
	return c, ok
}

// Commands returns the defined commands sorted by name; use Name and SHA to
// list them.
func (r *Registry) Commands() []*Command {
	r.mu.RLock()
	out := make([]*Command, 0, len(r.cmds))
	for _, c := range r.cmds {
		out = append(out, c)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Preload caches every defined command on the server, as the package-level
// Preload does.
func (r *Registry) Preload(ctx context.Context, client redis.Scripter) error {
	return Preload(ctx, client, r.Commands()...)
}

// masterIterator is implemented by *redis.ClusterClient.
type masterIterator interface {
	ForEachMaster(ctx context.Context, fn func(ctx context.Context, client *redis.Client) error) error
}

// shardIterator is implemented by *redis.Ring.
type shardIterator interface {
	ForEachShard(ctx context.Context, fn func(ctx context.Context, client *redis.Client) error) error
}

// Preload caches the scripts of cmds on the server with SCRIPT LOAD: on every
// master of a Redis Cluster, on every shard of a Ring, or on the one server
// otherwise (a *redis.Client, also Sentinel's failover client). Call it at
// start-up so that the first calls do not pay for a NOSCRIPT reply and an
// EVAL; a command that is not cached still runs, so Preload is an
// optimisation, not a requirement. A script cache emptied later (a restart, a
// failover, SCRIPT FLUSH) is refilled by the calls themselves.
func Preload(ctx context.Context, client redis.Scripter, cmds ...*Command) error {
	for _, c := range cmds {
		if c == nil {
			return fmt.Errorf("%w: nil command", ErrInvalidCommand)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	load := func(ctx context.Context, node redis.Scripter) error {
		for _, c := range cmds {
			sha, err := node.ScriptLoad(ctx, c.src).Result()
			if err != nil {
				return fmt.Errorf("lua: load %s: %w", c.name, err)
			}
			if sha != c.SHA() {
				return fmt.Errorf("lua: load %s: server returned SHA %s, want %s", c.name, sha, c.SHA())
			}
		}
		return nil
	}
	switch cl := client.(type) {
	case masterIterator:
		return cl.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return load(ctx, m) })
	case shardIterator:
		return cl.ForEachShard(ctx, func(ctx context.Context, s *redis.Client) error { return load(ctx, s) })
	default:
		return load(ctx, client)
	}
}
