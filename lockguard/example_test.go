package lockguard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// Obtain a lock, find another owner turned away with the holder's remaining
// TTL, and release.
func ExampleLocker_Obtain() {
	st, _ := memstore.New() // redisstore.New(client) to share locks between processes
	defer st.Close()
	locker, err := lockguard.New(st)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	lock, err := locker.Obtain(ctx, "report:daily", 30*time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println("obtained", lock.Key(), "with a fence:", lock.Fence() > 0)

	_, err = locker.Obtain(ctx, "report:daily", 30*time.Second)
	var held *lockguard.HeldError
	if errors.As(err, &held) {
		fmt.Println("busy, retry in", held.TTL.Round(time.Second))
	}

	if err := lock.Release(ctx); err != nil {
		panic(err)
	}
	fmt.Println("released")
	// Output:
	// obtained report:daily with a fence: true
	// busy, retry in 30s
	// released
}

// Wait for a lock: retry with a backoff strategy for up to a second.
func ExampleLocker_Obtain_wait() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	ctx := context.Background()

	first, _ := locker.Obtain(ctx, "printer", 10*time.Second)
	time.AfterFunc(50*time.Millisecond, func() { _ = first.Release(ctx) })

	second, err := locker.Obtain(ctx, "printer", 10*time.Second,
		lockguard.Retry(lockguard.LimitTries(lockguard.ExponentialBackoff(10*time.Millisecond, 100*time.Millisecond), 20)),
		lockguard.WaitFor(time.Second))
	if err != nil {
		panic(err)
	}
	defer second.Release(ctx)
	fmt.Println("got the printer after the first owner, fence increased:", second.Fence() > first.Fence())
	// Output: got the printer after the first owner, fence increased: true
}

// A background job under a lock: Do obtains it, keeps it alive while the job
// runs (however long that is), cancels the job's context if the lock is lost,
// and releases it at the end.
func ExampleLocker_Do() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st, lockguard.WithMaxHold(10*time.Minute))

	err := locker.Do(context.Background(), "job:reindex", 5*time.Second, func(ctx context.Context) error {
		lock, _ := lockguard.FromContext(ctx)
		// ... work, passing lock.Fence() with every write; stop when
		// ctx is done (context.Cause(ctx) says why).
		fmt.Println("reindexing under", lock.Key())
		return nil
	})
	switch {
	case errors.Is(err, lockguard.ErrHeld):
		fmt.Println("another instance is reindexing")
	case err != nil:
		fmt.Println("failed:", err)
	}
	// Output: reindexing under job:reindex
}

// KeepAlive is the building block of Do, for code that manages the lock
// itself.
func ExampleLock_KeepAlive() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	ctx := context.Background()

	lock, err := locker.Obtain(ctx, "migration", 300*time.Millisecond)
	if err != nil {
		panic(err)
	}
	defer lock.Release(ctx) // runs last, on a detached context
	work, stop := lock.KeepAlive(ctx)
	defer stop()

	select {
	case <-time.After(time.Second): // more than three TTLs of work
		fmt.Println("still held:", work.Err() == nil)
	case <-work.Done():
		fmt.Println("lost:", context.Cause(work))
	}
	// Output: still held: true
}

// Fencing: the downstream store remembers the highest fence it accepted and
// refuses writes from an owner whose lock has since passed to someone else.
func Example_fencing() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	ctx := context.Background()

	var db fencedTable // in SQL: UPDATE ... SET ..., last_fence = $fence WHERE id = $id AND last_fence < $fence

	slow, _ := locker.Obtain(ctx, "account:7", 50*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the slow owner pauses past its TTL...
	fast, _ := locker.Obtain(ctx, "account:7", time.Second)

	fmt.Println("new owner writes:", db.write(fast.Fence(), "balance=10"))
	fmt.Println("old owner writes:", db.write(slow.Fence(), "balance=99"))
	fmt.Println("value:", db.value)
	// Output:
	// new owner writes: true
	// old owner writes: false
	// value: balance=10
}

// fencedTable is a one-row table guarded by a fence column.
type fencedTable struct {
	mu        sync.Mutex
	lastFence int64
	value     string
}

func (t *fencedTable) write(fence int64, value string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fence <= t.lastFence {
		return false
	}
	t.lastFence, t.value = fence, value
	return true
}

// Admit is what an adapter calls; this one serves net/http by hand (package
// httpmw ships it). A framework adapter does the same with its own context.
func ExampleGuard_Admit() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	guard, err := lockguard.NewGuard("order", locker, limiter.PathValueKey("id"), 5*time.Second)
	if err != nil {
		panic(err)
	}
	middleware := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r, done, rejection := guard.Admit(w, r, nil)
			if rejection != nil {
				rejection.Write(w) // 409, 400 or 503
				return
			}
			if done != nil {
				defer done(0) // releases the lock, also if next panics
			}
			next.ServeHTTP(w, r)
		})
	}
	pay := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lock, _ := lockguard.FromContext(r.Context())
		fmt.Fprintf(w, "paid under %s\n", lock.Key())
	})
	mux := http.NewServeMux()
	mux.Handle("POST /orders/{id}/pay", middleware(pay))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/orders/42/pay", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output: 200 paid under order:param:id:42
}
