package testdb

import (
	"testing"
	"time"
)

// Receive returns the next value from ch, failing t if none comes within a
// generous bound. The bound only catches hangs; nothing asserts on how fast
// things happen.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// Poll calls cond until it holds, backing off from 5 ms to 200 ms, and fails
// t after limit. It is for watching another process (a server, a child)
// whose progress sends no signal into the test; the limit only catches
// hangs.
func Poll(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for backoff := 5 * time.Millisecond; !cond(); backoff = min(backoff*2, 200*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, limit)
		}
		<-time.After(backoff)
	}
}
