package postgres

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// waitTimeout bounds every wait on a signal. It is a failure bound, not an
// expectation: the signals normally arrive within milliseconds.
const waitTimeout = 20 * time.Second

// checkLeaks fails t if a goroutine started during t is still running after
// every other cleanup of t (stores closed, database dropped). Call it first
// in a test that does not run in parallel with others.
func checkLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// openStore opens a Store on url and closes it when t ends.
func openStore(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{URL: url})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openListening opens a Store on a fresh database, or on url if given, with
// a recorder registered.
func openListening(t *testing.T, url string) (*Store, *recorder) {
	t.Helper()
	if url == "" {
		url = testdb.PostgresURL(t)
	}
	s := openStore(t, url)
	r := newRecorder()
	s.Listen(r.add)
	return s, r
}

// recorder keeps every notification; add never blocks.
type recorder struct {
	mu   sync.Mutex
	got  []store.Notification
	wake chan struct{} // closed and replaced on every notification
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{})} }

func (r *recorder) add(n store.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	close(r.wake)
	r.wake = make(chan struct{})
}

func (r *recorder) all() []store.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor blocks until a notification matching match has arrived (possibly
// before the call) and returns it.
func (r *recorder) waitFor(t *testing.T, what string, match func(store.Notification) bool) store.Notification {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		for _, n := range r.got {
			if match(n) {
				r.mu.Unlock()
				return n
			}
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-timeout.C:
			t.Fatalf("no %s notification within %v; got %+v", what, waitTimeout, r.all())
		}
	}
}

// waitCount blocks until n notifications matching match have arrived.
func (r *recorder) waitCount(t *testing.T, what string, match func(store.Notification) bool, n int) {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		c := count(r.got, match)
		wake := r.wake
		r.mu.Unlock()
		if c >= n {
			return
		}
		select {
		case <-wake:
		case <-timeout.C:
			t.Fatalf("%d %s notifications within %v, want %d; got %+v", c, what, waitTimeout, n, r.all())
		}
	}
}

func count(ns []store.Notification, match func(store.Notification) bool) int {
	c := 0
	for _, n := range ns {
		if match(n) {
			c++
		}
	}
	return c
}

func isKind(kind string) func(store.Notification) bool {
	return func(n store.Notification) bool { return n.Kind == kind }
}

func isInsert(tenant, queue string) func(store.Notification) bool {
	return func(n store.Notification) bool {
		return n.Kind == store.NotifyInsert && n.TenantID == tenant && n.Queue == queue
	}
}

func job(queue string) store.InsertParams {
	return store.InsertParams{
		TenantID: "default", Queue: queue, Kind: "k", Args: []byte(`{}`),
		Priority: 2, MaxAttempts: 3,
	}
}

// The pool size comes from Config.MaxConns, else the URL's pool_max_conns,
// else the default.
func TestPoolSize(t *testing.T) {
	t.Parallel()
	url := testdb.PostgresURL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	for _, tc := range []struct {
		url  string
		max  int32
		want int32
	}{
		{url + sep + "pool_max_conns=3", 0, 3},
		{url + sep + "pool_max_conns=3", 5, 5},
		{url, 0, max(8, 4*int32(runtime.GOMAXPROCS(0)))},
	} {
		s, err := Open(t.Context(), Config{URL: tc.url, MaxConns: tc.max, NoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		got := s.Pool().Config().MaxConns
		s.Close()
		if got != tc.want {
			t.Errorf("URL %q, MaxConns %d: pool of %d, want %d", tc.url, tc.max, got, tc.want)
		}
	}
}
