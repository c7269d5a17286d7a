package httpmw

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/sluicehq/sluice/limiter"
)

// RateLimit returns middleware that applies p to every request: requests
// over the limit get p's denial (429 by default) and never reach the
// handler; the others reach it with the quota headers set and the decision
// in their context (limiter.FromContext). Several policies stack on one
// route: RateLimit(burst)(RateLimit(daily)(h)).
//
// When p counts only failed or only successful requests, the response writer
// is wrapped to learn the final status; the wrapper keeps http.Flusher,
// http.Hijacker and io.ReaderFrom working and unwraps for
// http.ResponseController. A handler that panics counts as status 500.
//
// RateLimit panics if p was not made by limiter.NewPolicy, as http.Handle
// does with a nil handler: that is a wiring mistake, found at start-up.
func RateLimit(p *limiter.Policy) func(http.Handler) http.Handler {
	if p.Name() == "" {
		panic("httpmw: RateLimit needs a Policy made by limiter.NewPolicy")
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("httpmw: RateLimit of a nil handler")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, done, rj := p.Admit(w, r, nil)
			if rj != nil {
				rj.Write(w)
				return
			}
			serve(w, r, next, done)
		})
	}
}

// serve runs next for an admitted request and then done, if not nil, with
// the response's final status: 500 if next panicked (the panic goes on).
func serve(w http.ResponseWriter, r *http.Request, next http.Handler, done func(status int)) {
	if done == nil {
		next.ServeHTTP(w, r)
		return
	}
	sw := &rlStatusWriter{ResponseWriter: w}
	finished := false
	defer func() {
		if !finished { // the handler panicked
			done(http.StatusInternalServerError)
		}
	}()
	next.ServeHTTP(sw, r)
	finished = true
	done(sw.status())
}

// rlStatusWriter records the final status a handler answers with.
type rlStatusWriter struct {
	http.ResponseWriter
	code int // first final (non-1xx, or 101) status written; 0 none yet
}

func (w *rlStatusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

func (w *rlStatusWriter) WriteHeader(code int) {
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *rlStatusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps io.Copy's fast paths (sendfile) of the underlying writer.
func (w *rlStatusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(rlWriterOnly{w.ResponseWriter}, r)
}

// Flush flushes the underlying writer if it can; it sends the headers, with
// status 200 unless another was written.
func (w *rlStatusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands over the connection if the underlying writer can.
func (w *rlStatusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *rlStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rlWriterOnly hides every method but Write, so io.Copy cannot loop back into
// ReadFrom.
type rlWriterOnly struct{ io.Writer }
