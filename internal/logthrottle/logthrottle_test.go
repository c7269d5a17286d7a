package logthrottle

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	var th Throttle
	if ok, n := th.Allow(); !ok || n != 0 {
		t.Fatalf("first line: %v, %d; want let through, none held back", ok, n)
	}
	for i := 0; i < 5; i++ {
		if ok, _ := th.Allow(); ok {
			t.Fatalf("line %d within the second was let through", i+2)
		}
	}
	th.last.Store(time.Now().Add(-2 * time.Second).UnixNano()) // a second has passed
	if ok, n := th.Allow(); !ok || n != 5 {
		t.Fatalf("after a second: %v, %d; want let through, 5 held back", ok, n)
	}
}
