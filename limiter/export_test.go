package limiter

// InProcess exposes inProcess to the tests.
var InProcess = inProcess

// PolicyOf builds a Policy over an existing Limiter, for the tests that
// check a Limiter and its Policy together.
func PolicyOf(l *Limiter, opts ...Option) (*Policy, error) { return newPolicy(l, opts) }
