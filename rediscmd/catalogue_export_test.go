package rediscmd

// ParseNumber exposes the Go side of the catalogue's number rule to the
// lua_test package, which checks it against the scripts' side.
var ParseNumber = parseNumber
