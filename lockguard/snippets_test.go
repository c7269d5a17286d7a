package lockguard_test

// The lock API code of README.md and docs/locks.md: each "snippet:begin
// NAME" region below is shown by a Go block of those files, which
// internal/doccheck keeps equal to it.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store/memstore"
)

// README.md, "Route guards and locks": a background job under a lock.
func ExampleLocker_Do_reindex() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	ctx := context.Background()
	reindex := func(ctx context.Context, fence int64) error {
		fmt.Println("reindexing with a fence:", fence > 0)
		return nil
	}

	// snippet:begin readme-do
	err := locker.Do(ctx, "job:reindex", 30*time.Second, func(ctx context.Context) error {
		lock, _ := lockguard.FromContext(ctx) // kept alive while this runs
		return reindex(ctx, lock.Fence())     // ctx is cancelled if the lock is lost
	})
	if errors.Is(err, lockguard.ErrHeld) {
		log.Print("another instance is on it")
	}
	// snippet:end
	// Output: reindexing with a fence: true
}

// docs/locks.md, "The lock API for background jobs".
func ExampleLocker_Do_batches() {
	st, _ := memstore.New()
	defer st.Close()
	ctx := context.Background()
	batches := []string{"a-m", "n-z"}
	index := searchIndex{}

	// snippet:begin locks-do
	locker, err := lockguard.New(st, lockguard.WithMaxHold(30*time.Minute))
	if err != nil {
		log.Fatal(err)
	}

	err = locker.Do(ctx, "job:reindex", 30*time.Second, func(ctx context.Context) error {
		lock, _ := lockguard.FromContext(ctx)
		for _, batch := range batches {
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx) // lock lost, max hold, or ctx cancelled
			}
			if err := index.Write(ctx, batch, lock.Fence()); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, lockguard.ErrHeld):
		log.Print("another instance is already reindexing")
	case errors.Is(err, lockguard.ErrLockLost):
		log.Print("the work ran partly without the lock: check what the fence rejected")
	case err != nil:
		log.Print(err)
	}
	// snippet:end
	// Output:
	// wrote a-m
	// wrote n-z
}

// searchIndex stands for a store that takes writes with a fence.
type searchIndex struct{}

func (searchIndex) Write(ctx context.Context, batch string, fence int64) error {
	if fence <= 0 {
		return errors.New("no fence")
	}
	fmt.Println("wrote", batch)
	return ctx.Err()
}

// docs/locks.md, "The lock API for background jobs": the pieces Do is made
// of.
func ExampleLocker_Obtain_pieces() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	if err := dailyReport(context.Background(), locker); err != nil {
		fmt.Println(err)
	}
	// Output:
	// report written
	// report:daily true true
	// 1m0s
}

func dailyReport(ctx context.Context, locker *lockguard.Locker) error {
	generateReport := func(ctx context.Context) error {
		fmt.Println("report written")
		return ctx.Err()
	}

	// snippet:begin locks-pieces
	lock, err := locker.Obtain(ctx, "report:daily", 30*time.Second)
	if err != nil {
		return err
	}
	defer lock.Release(ctx) // detached from ctx's cancellation, 2 s timeout

	work, stop := lock.KeepAlive(ctx) // extends every ttl/3 until stop
	defer stop()                      // always call it: it ends the goroutine
	if err := generateReport(work); err != nil {
		return err
	}

	key, token, fence := lock.Key(), lock.Token(), lock.Fence()
	if err := lock.Extend(ctx, time.Minute); err != nil { // set the remaining TTL (never re-creates a lost lock)
		return err
	}
	ttl, err := lock.TTL(ctx) // remaining TTL as the store sees it
	// snippet:end
	fmt.Println(key, token != "", fence > 0)
	fmt.Println(ttl.Round(time.Minute))
	return err
}

// docs/locks.md, "Waiting for a lock".
func ExampleRetry() {
	st, _ := memstore.New()
	defer st.Close()
	locker, _ := lockguard.New(st)
	ctx := context.Background()
	first, _ := locker.Obtain(ctx, "printer", 10*time.Second)
	time.AfterFunc(50*time.Millisecond, func() { _ = first.Release(ctx) })

	// snippet:begin locks-wait
	lock, err := locker.Obtain(ctx, "printer", 10*time.Second,
		lockguard.Retry(lockguard.ExponentialBackoff(10*time.Millisecond, 500*time.Millisecond)),
		lockguard.WaitFor(2*time.Second))
	// snippet:end
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lock.Release(ctx)
	fmt.Println("got", lock.Key(), "after its first owner")
	// Output: got printer after its first owner
}
