package lua

import (
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// TagKey returns prefix + ":{" + tag + "}:" + name, a key whose Redis Cluster
// hash slot depends on tag alone: keys built with one tag can be passed to one
// script call (WeightedAverage, Reserve, Restock) on Cluster. tag should be
// non-empty and free of '}', or Cluster hashes something else; choose it so
// that keys used together share it (a shop, a tenant, a region) while
// unrelated keys spread over the cluster.
func TagKey(prefix, tag, name string) string {
	return prefix + ":{" + tag + "}:" + name
}

// StockKey returns the stock counter key of item in the store tagged tag,
// "stock:{tag}:item", for Reserve and Restock.
func StockKey(tag, item string) string { return TagKey("stock", tag, item) }

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

// Slot returns the Redis Cluster hash slot (0 to 16383) of key: CRC16 of its
// hash tag, or of the whole key when it has none, modulo 16384. It equals what
// CLUSTER KEYSLOT answers.
func Slot(key string) int {
	tag, _ := hashTag(key)
	return int(crc16(tag) % 16384)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum
// Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
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
		first := Slot(keys[0])
		for _, k := range keys[1:] {
			if s := Slot(k); s != first {
				return fmt.Errorf("%w: %s: %q is in slot %d but %q in slot %d; build the keys with one tag, e.g. lua.StockKey(tag, item)", ErrCrossSlot, fn, keys[0], first, k, s)
			}
		}
	case *redis.Ring:
		first, _ := hashTag(keys[0])
		for _, k := range keys[1:] {
			if t, _ := hashTag(k); t != first {
				return fmt.Errorf("%w: %s: a Ring sends %q and %q to shards by different hash tags; build the keys with one tag, e.g. lua.StockKey(tag, item)", ErrCrossSlot, fn, keys[0], k)
			}
		}
	}
	return nil
}
