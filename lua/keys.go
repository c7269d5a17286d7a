package lua

import "strings"

// TagKey returns prefix + ":{" + tag + "}:" + name, a key whose Redis Cluster
// hash slot depends on tag alone: keys built with one tag can be passed to one
// script call on Cluster. tag should be non-empty and free of '}', or Cluster
// hashes something else; choose it so that keys used together share it (a
// shop, a tenant, a region) while unrelated keys spread over the cluster.
func TagKey(prefix, tag, name string) string {
	return prefix + ":{" + tag + "}:" + name
}

// Slot returns the Redis Cluster hash slot (0 to 16383) of key: CRC16 of its
// hash tag (the part between the first '{' and the next '}', if that is
// non-empty), or of the whole key when it has none, modulo 16384. It equals
// what CLUSTER KEYSLOT answers.
func Slot(key string) int {
	return int(crc16(hashTag(key)) % 16384)
}

// hashTag returns what Redis Cluster hashes for key: the part between the
// first '{' and the next '}' if that is non-empty, or else the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
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
