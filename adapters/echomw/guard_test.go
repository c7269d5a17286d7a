package echomw_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/adapters/echomw"
	"github.com/sluicehq/sluice/internal/guardtest"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// guardRecover turns a panic into an error for echo's error handler (500), as
// echo's middleware.Recover does. (That package needs golang.org/x/time,
// which sluice's go.mod does not require.)
func guardRecover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = echo.NewHTTPError(http.StatusInternalServerError)
			}
		}()
		return next(c)
	}
}

// guardMount serves POST /orders/:id through echomw.Guard, with a recovering
// middleware outside it.
func guardMount(g *lockguard.Guard, h http.Handler) http.Handler {
	e := echo.New()
	e.Use(guardRecover)
	e.POST("/orders/:id", echo.WrapHandler(h), echomw.Guard(g))
	return e
}

// guardByMount is guardMount with the key read by WithKey from echo's route
// parameter.
func guardByMount(g *lockguard.Guard, h http.Handler) http.Handler {
	e := echo.New()
	e.Use(guardRecover)
	key := func(c echo.Context) (string, error) {
		if c.Param("id") == "abc" {
			return "", errors.New("not a number") // the suite's key-error case
		}
		return echomw.ParamKey("id")(c)
	}
	e.POST("/orders/:id", echo.WrapHandler(h), echomw.Guard(g, echomw.WithKey(key)))
	return e
}

func guardBackends() []guardtest.Backend {
	mini := guardtest.Emulated("miniredis", func(t *testing.T) guardtest.EmulatedServer { return miniredis.RunT(t) })
	return append([]guardtest.Backend{guardtest.Memory(), mini, guardtest.OwnRedis()}, guardtest.Env()...)
}

func TestGuard(t *testing.T) {
	guardtest.Run(t, guardMount, guardBackends()...)
}

func TestGuardWithKey(t *testing.T) {
	guardtest.Run(t, guardByMount, guardtest.Memory())
}

func guardNew(t *testing.T) *lockguard.Guard {
	t.Helper()
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	locker, err := lockguard.New(st)
	require.NoError(t, err)
	g, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 30*time.Second, lockguard.WithLogger(nil))
	require.NoError(t, err)
	return g
}

func guardDo(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// An error the handler returns reaches echo's error handler unchanged, and
// the lock is released.
func TestGuardHandlerError(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
	}{
		{"http-error", echo.NewHTTPError(http.StatusTeapot, "short and stout"), http.StatusTeapot},
		{"plain-error", errors.New("database exploded"), http.StatusInternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := echo.New()
			var seen error
			e.HTTPErrorHandler = func(err error, c echo.Context) {
				seen = err
				e.DefaultHTTPErrorHandler(err, c)
			}
			e.POST("/orders/:id", func(c echo.Context) error {
				if _, ok := lockguard.FromContext(c.Request().Context()); !ok {
					return c.String(http.StatusInternalServerError, "no lock")
				}
				if c.QueryParam("fail") != "" {
					return tc.err
				}
				return c.String(http.StatusOK, "ok")
			}, echomw.Guard(guardNew(t)))
			srv := httptest.NewServer(e)
			t.Cleanup(srv.Close)

			status, _ := guardDo(t, srv.URL+"/orders/1?fail=1")
			assert.Equal(t, tc.status, status)
			assert.Same(t, tc.err, seen, "echo's error handler got the handler's error")

			status, body := guardDo(t, srv.URL+"/orders/1")
			assert.Equal(t, http.StatusOK, status, "the lock was released after the error")
			assert.Equal(t, "ok", body)
		})
	}
}

// A rejection is written by the guard and never reaches echo's error handler.
func TestGuardRejectionBypassesErrorHandler(t *testing.T) {
	e := echo.New()
	called := false
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		called = true
		e.DefaultHTTPErrorHandler(err, c)
	}
	e.POST("/orders/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, echomw.Guard(guardNew(t)))
	e.POST("/orders", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, echomw.Guard(guardNew(t)))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	status, body := guardDo(t, srv.URL+"/orders") // no :id parameter: key error
	assert.Equal(t, http.StatusBadRequest, status)
	assert.JSONEq(t, `{"error":"invalid resource key"}`, body)
	assert.False(t, called)
}

// WithKey can key on what an earlier middleware stored in the echo.Context.
func TestGuardWithKeyContextValue(t *testing.T) {
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Set("user", c.Request().Header.Get("X-User"))
			return next(c)
		}
	})
	key := func(c echo.Context) (string, error) {
		u, _ := c.Get("user").(string)
		return "user:" + u, nil // an empty user gives "user:", which is a key
	}
	e.POST("/report", func(c echo.Context) error {
		l, ok := lockguard.FromContext(c.Request().Context())
		if !ok {
			return c.String(http.StatusInternalServerError, "no lock")
		}
		return c.String(http.StatusOK, l.Key())
	}, echomw.Guard(guardNew(t), echomw.WithKey(key)))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/report", nil)
	require.NoError(t, err)
	req.Header.Set("X-User", "ada")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "order:user:ada", string(body), "the guard's name, a colon and the key")
}

func TestGuardNilPanics(t *testing.T) {
	assert.Panics(t, func() { echomw.Guard(nil) })
}

// Mounted under a ServeMux pattern with path values of its own, the guard
// gives echo's parameters to its own copy of the request: the request the mux
// matched keeps its values.
func TestGuardUnderServeMux(t *testing.T) {
	cases := []struct {
		name  string
		outer func(r *http.Request) // runs on the mux's request before echo
		want  map[string]string     // the mux's request's values after echo
	}{
		{"pattern-wildcards", nil, map[string]string{"id": "acme", "n": "42", "tenant": ""}},
		{"values-set-outside", func(r *http.Request) { r.SetPathValue("tenant", "outer") },
			map[string]string{"id": "acme", "n": "42", "tenant": "outer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := echo.New()
			var key, seen string
			e.POST("/:tenant/orders/:id", func(c echo.Context) error {
				if l, ok := lockguard.FromContext(c.Request().Context()); ok {
					key = l.Key()
				}
				seen = c.Request().PathValue("id")
				return c.NoContent(http.StatusOK)
			}, echomw.Guard(guardNew(t)))
			mux := http.NewServeMux()
			var after map[string]string
			mux.HandleFunc("POST /{id}/orders/{n}", func(w http.ResponseWriter, r *http.Request) {
				if tc.outer != nil {
					tc.outer(r)
				}
				e.ServeHTTP(w, r)
				after = map[string]string{"id": r.PathValue("id"), "n": r.PathValue("n"), "tenant": r.PathValue("tenant")}
			})
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/acme/orders/42", nil))
			assert.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, "order:param:id:42", key, "the guard keyed on echo's parameter")
			assert.Equal(t, "42", seen, "the handler sees echo's parameters as path values")
			assert.Equal(t, tc.want, after, "the mux's request keeps its path values")
		})
	}
}

// TestGuardDecodesRouteParams checks that the same order written two ways,
// "/orders/A" and "/orders/%41" (which echo leaves escaped), takes one lock:
// while the first request holds it, the second is turned away with 409.
func TestGuardDecodesRouteParams(t *testing.T) {
	st, err := memstore.New()
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	locker, err := lockguard.New(st)
	require.NoError(t, err)
	g, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)
	require.NoError(t, err)
	held, release := make(chan struct{}), make(chan struct{})
	e := echo.New()
	e.POST("/orders/:id", func(c echo.Context) error {
		if c.Request().PathValue("id") != "A" {
			return c.String(http.StatusTeapot, c.Request().PathValue("id"))
		}
		close(held)
		<-release
		return c.NoContent(http.StatusOK)
	}, echomw.Guard(g))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	first := make(chan int, 1)
	go func() {
		res, err := http.Post(srv.URL+"/orders/A", "", nil)
		if err != nil {
			first <- 0
			return
		}
		_ = res.Body.Close()
		first <- res.StatusCode
	}()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the first request never took the lock")
	}
	res, err := http.Post(srv.URL+"/orders/%41", "", nil)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusConflict, res.StatusCode, "/orders/%41 is order A, whose lock is held")
	close(release)
	assert.Equal(t, http.StatusOK, <-first)
}
