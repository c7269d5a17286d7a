package lua_test

import (
	"crypto/sha1"
	"encoding/hex"
)

// sha1Hex returns the SHA1 digest of src in hex, as Redis names scripts.
func sha1Hex(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}
