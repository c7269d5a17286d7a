package config

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// parsePattern fills the route's method, host, ServeMux path, canonical
// path and parameters from a pattern in ServeMux syntax
// ("POST /orders/{id}/pay", "/files/{path...}", "example.com/") or in
// echo's and gin's ("/orders/:id/pay", "/files/*path", "/files/*").
func (rs *routeSpec) parsePattern(s string) error {
	rest := s
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		rs.method, rest = s[:i], strings.TrimLeft(s[i:], " \t")
		if !validToken(rs.method) || strings.ToUpper(rs.method) != rs.method {
			return fmt.Errorf("method %q: want an upper-case method such as GET", rs.method)
		}
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return errors.New("the path must start with /")
	}
	rs.host = rest[:slash]
	segs := strings.Split(rest[slash+1:], "/")
	var path, canon strings.Builder
	for i, seg := range segs {
		path.WriteByte('/')
		canon.WriteByte('/')
		last := i == len(segs)-1
		switch {
		case strings.HasPrefix(seg, ":") && len(seg) > 1:
			path.WriteString("{" + seg[1:] + "}")
			canon.WriteString("{}")
			rs.params = append(rs.params, seg[1:])
		case strings.HasPrefix(seg, "*"):
			if !last {
				return errors.New("a * wildcard must be the last segment")
			}
			name := seg[1:]
			if name == "" {
				name = "path"
				rs.params = append(rs.params, "*") // echo's name for it
			}
			path.WriteString("{" + name + "...}")
			canon.WriteString("{...}")
			rs.params = append(rs.params, name)
		case seg == "{$}":
			path.WriteString(seg) // the path ends with /, exactly
			rs.exact = true
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}"):
			path.WriteString(seg)
			canon.WriteString("{...}")
			rs.params = append(rs.params, seg[1:len(seg)-4])
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			path.WriteString(seg)
			canon.WriteString("{}")
			rs.params = append(rs.params, seg[1:len(seg)-1])
		default:
			path.WriteString(seg)
			canon.WriteString(seg)
		}
	}
	rs.path, rs.canon = path.String(), canon.String()
	// In ServeMux syntax, a path that ends with / names every path below it.
	rs.prefix = strings.HasSuffix(rs.path, "/") && !rs.exact
	return register(http.NewServeMux(), rs.muxPattern(), http.NotFoundHandler())
}

// muxPattern is the route's pattern in ServeMux syntax.
func (rs *routeSpec) muxPattern() string {
	if rs.method == "" {
		return rs.host + rs.path
	}
	return rs.method + " " + rs.host + rs.path
}

var registeredAt = regexp.MustCompile(` ?\(registered at [^)]*\)`)

// register adds a pattern to a ServeMux, turning its panic on a bad or
// conflicting pattern into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprint(r)
			// "parsing "x": at offset 3: bad wildcard ..." → the reason
			if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "parsing ") {
				msg = msg[i+2:]
			}
			// Conflicts name the Go source line of each registration.
			err = errors.New(registeredAt.ReplaceAllString(msg, ""))
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// canonPath returns a framework's route path (echo's c.Path(), gin's
// c.FullPath()) in the canonical form routes are matched by. It allocates
// only when the path has parameters.
func canonPath(p string) string {
	if !strings.ContainsAny(p, ":*{") {
		return p
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		switch {
		case strings.HasPrefix(seg, ":"):
			segs[i] = "{}"
		case strings.HasPrefix(seg, "*"), strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "...}"):
			segs[i] = "{...}"
		case seg == "{$}":
			segs[i] = ""
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}
