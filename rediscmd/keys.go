package rediscmd

import (
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
)

// StockKey returns the stock counter key of item in the store tagged tag,
// "stock:{tag}:item" (lua.TagKey("stock", tag, item)), for Reserve and
// Restock: counters built with one tag share a Redis Cluster slot.
func StockKey(tag, item string) string { return lua.TagKey("stock", tag, item) }

// hashTag returns what Redis Cluster hashes for key: the part between the
// first '{' and the next '}' if that is non-empty, or else the whole key.
func hashTag(key string) (tag string, tagged bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key, false
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key, false
	}
	return key[open+1 : open+1+end], true
}

// checkSlots reports ErrCrossSlot, before anything is sent, when client routes
// keys by slot (a Cluster) or by hash tag (a Ring) and keys would not all reach
// the same place. For any other client the server's CROSSSLOT answer, if any,
// is mapped to ErrCrossSlot instead.
func checkSlots(fn string, client redis.Scripter, keys []string) error {
	if len(keys) < 2 {
		return nil
	}
	switch client.(type) {
	case *redis.ClusterClient:
		first := lua.Slot(keys[0])
		for _, k := range keys[1:] {
			if s := lua.Slot(k); s != first {
				return fmt.Errorf("%w: %s: %q is in slot %d but %q in slot %d; build the keys with one tag, e.g. rediscmd.StockKey(tag, item)", ErrCrossSlot, fn, keys[0], first, k, s)
			}
		}
	case *redis.Ring:
		first, _ := hashTag(keys[0])
		for _, k := range keys[1:] {
			if t, _ := hashTag(k); t != first {
				return fmt.Errorf("%w: %s: a Ring sends %q and %q to shards by different hash tags; build the keys with one tag, e.g. rediscmd.StockKey(tag, item)", ErrCrossSlot, fn, keys[0], k)
			}
		}
	}
	return nil
}
