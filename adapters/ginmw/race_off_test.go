//go:build !race

package ginmw_test

// raceEnabled reports whether the tests run under the race detector, which
// makes allocation counts unreliable (it drops items put into a sync.Pool at
// random, and gin pools its Contexts).
const raceEnabled = false
