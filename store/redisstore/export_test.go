package redisstore

// ScriptSHAs returns the name and SHA1 of every script the Store runs, for
// the tests of Preload.
func ScriptSHAs() map[string]string {
	out := make(map[string]string, len(scripts))
	for _, c := range scripts {
		out[c.Name()] = c.SHA()
	}
	return out
}
