package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/store/postgres"
	"github.com/switchyard-dev/switchyard/internal/store/sqlite"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// openStore opens a real store for db, a testdb.ForEachBackend database.
func openStore(t testing.TB, db string) store.Store {
	t.Helper()
	var (
		s   store.Store
		err error
	)
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		s, err = sqlite.Open(context.Background(), sqlite.Config{Path: path})
	} else {
		s, err = postgres.Open(context.Background(), postgres.Config{URL: db})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// counted is a real store that counts its TakeTokens calls, the round trips
// shared mode is built to save. Until gate is closed, its first call waits
// for it, after signalling entered.
type counted struct {
	TokenStore
	calls   atomic.Int64
	entered chan struct{}
	gate    chan struct{}
}

func (c *counted) TakeTokens(ctx context.Context, key string, rate float64, burst, want int) (int, time.Duration, error) {
	if c.calls.Add(1) == 1 && c.gate != nil {
		close(c.entered)
		<-c.gate
	}
	return c.TokenStore.TakeTokens(ctx, key, rate, burst, want)
}

func TestSharedAdmitsBurstThenRefuses(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		s := openStore(t, db)
		node1, node2 := &counted{TokenStore: s}, &counted{TokenStore: s}
		l1 := newLocal(t, Config{Store: node1})
		l2 := newLocal(t, Config{Store: node2})
		// A refill of one token in 1000 s: none during the test.
		lim := Limit{Rate: 0.001, Burst: 200}
		admitted := 0
		for i := range 250 {
			d := allow(t, l1, "tenant/a", lim)
			if d.Allowed {
				admitted++
			}
			if d.Allowed != (i < lim.Burst) {
				t.Fatalf("request %d: %+v", i, d)
			}
			if !d.Allowed && d.RetryAfter < 900*time.Second {
				t.Fatalf("request %d: RetryAfter %v, want about 1000s (one token's refill)", i, d.RetryAfter)
			}
		}
		// Leases grow 1, 2, 4, 8, then chunks of burst/20 = 10: about 25
		// round trips for 200 tokens, and none for the refusals.
		if n := node1.calls.Load(); n > 30 {
			t.Errorf("%d TakeTokens for %d admitted requests and 50 refused", n, admitted)
		}
		// The bucket is shared: another node finds it empty.
		if d := allow(t, l2, "tenant/a", lim); d.Allowed {
			t.Errorf("second node: %+v, want refused", d)
		}
		// And other keys are not.
		if d := allow(t, l2, "tenant/b", lim); !d.Allowed || d.Remaining != lim.Burst-1 {
			t.Errorf("second node, another key: %+v", d)
		}
	})
}

// TestSharedRequestsShareOneTakeTokens holds the first TakeTokens of a key
// until 63 more requests for it wait, and checks that they all wait for that
// one call and then share a few rather than making one each.
func TestSharedRequestsShareOneTakeTokens(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := &counted{TokenStore: openStore(t, db), entered: make(chan struct{}), gate: make(chan struct{})}
		l := newLocal(t, Config{Store: c})
		lim := Limit{Rate: 0.001, Burst: 1000}
		const requests = 64
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range requests {
			wg.Go(func() {
				if allow(t, l, "k", lim).Allowed {
					admitted.Add(1)
				}
			})
		}
		<-c.entered
		e := l.lease.get("k", l.now())
		for {
			e.mu.Lock()
			waiting := e.flight.waiters
			e.mu.Unlock()
			if waiting == requests-1 {
				break
			}
			runtime.Gosched()
		}
		close(c.gate)
		wg.Wait()
		// The first call asked for 1 token (a fresh key starts small); the
		// second for a chunk of 50, for the 63 that waited; the third for
		// the 13 left.
		if n := c.calls.Load(); n != 3 || admitted.Load() != requests {
			t.Errorf("%d TakeTokens for %d requests, %d admitted; want 3 calls, all admitted", n, requests, admitted.Load())
		}
	})
}

func TestSharedFailsOpen(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		s := openStore(t, db)
		s.Close() // the database is gone
		c := &counted{TokenStore: s}
		var log bytes.Buffer
		reg := prometheus.NewRegistry()
		l := newLocal(t, Config{
			Store:      c,
			Logger:     slog.New(slog.NewTextHandler(&log, nil)),
			Registerer: reg,
			LeaseTTL:   time.Hour, // so that the test does not depend on its speed
		})
		lim := Limit{Rate: 1, Burst: 5}
		for _, key := range []string{"a", "b"} {
			for range 10 {
				if d := allow(t, l, key, lim); !d.Allowed {
					t.Fatalf("%s: %+v, want allowed while the store is down", key, d)
				}
			}
		}
		if n := c.calls.Load(); n != 2 {
			t.Errorf("%d TakeTokens, want one per key: after a failure a key is allowed without asking", n)
		}
		if n := strings.Count(log.String(), "\n"); n != 1 || !strings.Contains(log.String(), "level=WARN") {
			t.Errorf("logged %d lines, want one warning a minute:\n%s", n, log.String())
		}
		if got := decisions(t, reg); got["error"] != 20 || got["allowed"] != 0 || got["limited"] != 0 {
			t.Errorf("decisions %v, want 20 errors", got)
		}
	})
}

func TestStoreFailureLoggedOncePerMinute(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var log bytes.Buffer
		l := newLocal(t, Config{Logger: slog.New(slog.NewTextHandler(&log, nil))})
		down := errors.New("connection refused")
		for range 3 {
			l.storeFailed(l.now(), "k", down)
		}
		time.Sleep(time.Minute)
		l.storeFailed(l.now(), "k", down)
		lines := strings.Split(strings.TrimSpace(log.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "failures_not_logged=0") || !strings.Contains(lines[1], "failures_not_logged=2") {
			t.Errorf("log:\n%s\nwant two lines, the second counting the 2 not logged", log.String())
		}
	})
}

// TestSharedThreeNodesStayWithinLimit is the multi-node check: three
// limiters, each on its own connection pool to one PostgreSQL database,
// hammer one key for a fixed number of attempts. Whatever the timing, what
// they admit together must stay within what the shared bucket can have
// granted, burst + rate × elapsed (database clock), and come close to it.
func TestSharedThreeNodesStayWithinLimit(t *testing.T) {
	t.Parallel()
	url := testdb.PostgresURL(t)
	const nodes, perNode, attempts = 3, 8, 1000
	lim := Limit{Rate: 100, Burst: 300}
	var (
		stores   [nodes]store.Store
		counts   [nodes]*counted
		limiters [nodes]*Limiter
	)
	for n := range nodes {
		stores[n] = openStore(t, url)
		counts[n] = &counted{TokenStore: stores[n]}
		limiters[n] = newLocal(t, Config{Store: counts[n]})
	}
	ctx := t.Context()
	before, err := stores[0].Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for n := range nodes {
		for range perNode {
			wg.Go(func() {
				for range attempts {
					d := allow(t, limiters[n], "tenant/key", lim)
					if d.Allowed {
						admitted.Add(1)
					} else {
						refused.Add(1)
					}
					// A request does work of its own, which reads the
					// database: it spaces the attempts out in time, as real
					// traffic is.
					if _, err := stores[n].Now(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	after, err := stores[0].Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := after.Sub(before)
	bound := float64(lim.Burst) + lim.Rate*elapsed.Seconds()
	parked := float64(nodes * max(1, lim.Burst/20))
	calls := counts[0].calls.Load() + counts[1].calls.Load() + counts[2].calls.Load()
	got := float64(admitted.Load())
	t.Logf("3 nodes, burst %d, rate %v/s, %d attempts in %v (database clock): admitted %d, limit %.1f, admitted/limit = %.3f; %d refused; %d TakeTokens (%.4f per attempt)",
		lim.Burst, lim.Rate, nodes*perNode*attempts, elapsed.Round(time.Millisecond), admitted.Load(), bound, got/bound, refused.Load(), calls, float64(calls)/float64(nodes*perNode*attempts))
	if got > bound {
		t.Errorf("admitted %d, more than the shared bucket can have granted (%.1f)", admitted.Load(), bound)
	}
	if low := 0.9*bound - parked; got < low {
		t.Errorf("admitted %d, fewer than %.1f (90%% of the limit %.1f less %v tokens parked on the nodes)", admitted.Load(), low, bound, parked)
	}
}
