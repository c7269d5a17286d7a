package limiter

// InProcess exposes inProcess to the tests.
var InProcess = inProcess
