package ratelimit

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// interval is the time one token takes to accrue, as the limiter rounds it.
func interval(lim Limit) time.Duration { return time.Duration(math.Round(1e9 / lim.Rate)) }

// checkDecision asserts the invariants that the response headers rely on.
// It does not stop the test, so that goroutines may call it.
func checkDecision(t testing.TB, lim Limit, d Decision) {
	t.Helper()
	full := time.Duration(lim.Burst) * interval(lim)
	switch {
	case d.Limit != lim.Burst:
		t.Errorf("%+v: Limit %d, want the burst %d", d, d.Limit, lim.Burst)
	case d.Remaining < 0 || d.Remaining >= lim.Burst:
		t.Errorf("%+v: Remaining out of [0, burst)", d)
	case d.Reset < 0 || d.Reset > full:
		t.Errorf("%+v: Reset out of [0, %v]", d, full)
	case d.Allowed && d.RetryAfter != 0:
		t.Errorf("%+v: allowed with a RetryAfter", d)
	case !d.Allowed && (d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter > d.Reset):
		t.Errorf("%+v: refused needs Remaining 0 and 0 < RetryAfter <= Reset", d)
	}
}

func newLocal(t *testing.T, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// allow asks l and checks the decision. It does not stop the test, so that
// goroutines may call it.
func allow(t testing.TB, l *Limiter, key string, lim Limit) Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), key, lim)
	if err != nil {
		t.Errorf("allow %s: %v", key, err)
	}
	checkDecision(t, lim, d)
	return d
}

func TestLocalAdmitsBurstThenRefillsAtRate(t *testing.T) {
	t.Parallel()
	for _, lim := range []Limit{
		{Rate: 1, Burst: 5},
		{Rate: 100, Burst: 300},
		{Rate: 0.5, Burst: 1},
		{Rate: 3, Burst: 10}, // an interval that is not a whole number of nanoseconds
	} {
		t.Run(fmt.Sprintf("%v/s,burst %d", lim.Rate, lim.Burst), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				l := newLocal(t, Config{})
				every := interval(lim)
				for round := range 2 {
					for i := range lim.Burst {
						d := allow(t, l, "k", lim)
						if !d.Allowed || d.Remaining != lim.Burst-1-i || d.Reset != time.Duration(i+1)*every {
							t.Fatalf("round %d, request %d of the burst: %+v", round, i, d)
						}
					}
					d := allow(t, l, "k", lim)
					if d.Allowed || d.RetryAfter != every || d.Reset != time.Duration(lim.Burst)*every {
						t.Fatalf("round %d, past the burst: %+v, want refused, RetryAfter %v", round, d, every)
					}
					// One token accrues per interval: exactly one more request.
					time.Sleep(d.RetryAfter)
					if d := allow(t, l, "k", lim); !d.Allowed || d.Remaining != 0 {
						t.Fatalf("round %d, one interval later: %+v, want allowed with nothing left", round, d)
					}
					if d := allow(t, l, "k", lim); d.Allowed {
						t.Fatalf("round %d, then: %+v, want refused", round, d)
					}
					// Other keys have buckets of their own.
					if d := allow(t, l, "other"+strconv.Itoa(round), lim); !d.Allowed || d.Remaining != lim.Burst-1 {
						t.Fatalf("round %d, another key: %+v", round, d)
					}
					// Full again after Reset: the next round sees a whole burst.
					time.Sleep(time.Duration(lim.Burst) * every)
				}
			})
		})
	}
}

// TestLocalMatchesTokenBucket drives the limiter with random requests and
// pauses and compares every decision with a plain token bucket.
func TestLocalMatchesTokenBucket(t *testing.T) {
	t.Parallel()
	for _, lim := range []Limit{{Rate: 4, Burst: 3}, {Rate: 1000, Burst: 50}, {Rate: 0.25, Burst: 2}} {
		t.Run(fmt.Sprintf("%v/s,burst %d", lim.Rate, lim.Burst), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				l := newLocal(t, Config{})
				rng := rand.New(rand.NewPCG(1, uint64(lim.Burst)))
				every := interval(lim)
				level, last := float64(lim.Burst), time.Now()
				for i := range 5000 {
					if rng.IntN(3) == 0 {
						time.Sleep(time.Duration(rng.Int64N(int64(2 * every))).Truncate(time.Millisecond))
					}
					now := time.Now()
					level = math.Min(float64(lim.Burst), level+now.Sub(last).Seconds()*lim.Rate)
					last = now
					want := level >= 1-1e-9
					if want {
						level--
					}
					d := allow(t, l, "k", lim)
					if d.Allowed != want {
						t.Fatalf("request %d: %+v, token bucket at %.4f says allowed=%v", i, d, level, want)
					}
					if d.Allowed && d.Remaining != int(math.Floor(level+1e-9)) {
						t.Fatalf("request %d: Remaining %d, token bucket at %.4f", i, d.Remaining, level)
					}
					if !d.Allowed {
						if due := time.Duration((1 - level) / lim.Rate * 1e9); (d.RetryAfter - due).Abs() > time.Microsecond {
							t.Fatalf("request %d: RetryAfter %v, token bucket's next token in %v", i, d.RetryAfter, due)
						}
					}
				}
			})
		})
	}
}

// TestLocalConcurrentAdmitsExactlyBurst hammers keys from 64 goroutines
// while the (synctest) clock stands still: no refill, so exactly the burst
// of each key is admitted, however the goroutines interleave.
func TestLocalConcurrentAdmitsExactlyBurst(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const keys, goroutines, attempts = 4, 64, 200
		lim := Limit{Rate: 1, Burst: 1000}
		l := newLocal(t, Config{})
		var admitted [keys]atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range attempts {
					k := (g + i) % keys
					if d := allow(t, l, "k"+strconv.Itoa(k), lim); d.Allowed {
						admitted[k].Add(1)
					}
				}
			})
		}
		wg.Wait()
		for k := range keys {
			if n := admitted[k].Load(); n != int64(lim.Burst) {
				t.Errorf("key %d: admitted %d, want exactly the burst %d", k, n, lim.Burst)
			}
		}
	})
}

func TestLocalEvictionBoundsMemory(t *testing.T) {
	t.Parallel()
	t.Run("more keys than MaxKeys", func(t *testing.T) {
		t.Parallel()
		for _, maxKeys := range []int{1, 100, 1000} {
			l := newLocal(t, Config{MaxKeys: maxKeys})
			for i := range 50000 {
				allow(t, l, "k"+strconv.Itoa(i), Limit{Rate: 1, Burst: 10})
				if n := l.local.len(); n > maxKeys {
					t.Fatalf("MaxKeys %d: %d buckets after %d keys", maxKeys, n, i+1)
				}
			}
		}
	})
	t.Run("full buckets are dropped, others kept", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			l := newLocal(t, Config{})
			lim := Limit{Rate: 1, Burst: 2}
			for i := range 5000 {
				allow(t, l, "old"+strconv.Itoa(i), lim)
			}
			// Long enough for the old buckets to fill up and for every
			// stripe to be due a sweep.
			time.Sleep(2 * time.Minute)
			// A bucket in use must survive the sweeps.
			allow(t, l, "busy", lim)
			allow(t, l, "busy", lim)
			for i := range 5000 {
				allow(t, l, "new"+strconv.Itoa(i), lim)
			}
			if n := l.local.len(); n != 5001 {
				t.Errorf("%d buckets, want the 5000 new ones and busy: the full ones evicted", n)
			}
			if d := allow(t, l, "busy", lim); d.Allowed {
				t.Errorf("busy allowed a third request (%+v): its bucket was forgotten", d)
			}
		})
	})
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	l := newLocal(t, Config{})
	for _, lim := range []Limit{
		{Rate: 0, Burst: 1},
		{Rate: -1, Burst: 1},
		{Rate: math.NaN(), Burst: 1},
		{Rate: math.Inf(1), Burst: 1},
		{Rate: 1, Burst: 0},
		{Rate: 1, Burst: math.MaxInt32 + 1},
		{Rate: 1e-12, Burst: 1 << 30}, // fills in 3e34 years
	} {
		if d, err := l.Allow(t.Context(), "k", lim); err == nil {
			t.Errorf("%+v: %+v, want an error", lim, d)
		}
	}
	for _, cfg := range []Config{{LeaseTTL: -1}, {StoreTimeout: -1}, {ChunkParts: -1}, {MaxKeys: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Registerer: reg}); err == nil {
		t.Error("registered the metrics twice without an error")
	}
}

// decisions reads switchyard_ratelimit_decisions_total by result.
func decisions(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "switchyard_ratelimit_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return got
}

func TestLocalMetrics(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		l := newLocal(t, Config{Registerer: reg})
		for range 5 {
			allow(t, l, "k", Limit{Rate: 1, Burst: 3})
		}
		got := decisions(t, reg)
		if got["allowed"] != 3 || got["limited"] != 2 || got["error"] != 0 {
			t.Errorf("decisions %v, want 3 allowed, 2 limited", got)
		}
	})
}

func ExampleLimiter_Allow() {
	l, err := New(Config{}) // local mode: buckets in this process
	if err != nil {
		panic(err)
	}
	lim := Limit{Rate: 1, Burst: 2}
	for range 3 {
		d, err := l.Allow(context.Background(), "key-1", lim)
		if err != nil {
			panic(err)
		}
		fmt.Printf("allowed=%v remaining=%d retry-after=%.0fs\n", d.Allowed, d.Remaining, d.RetryAfter.Seconds())
	}
	// Output:
	// allowed=true remaining=1 retry-after=0s
	// allowed=true remaining=0 retry-after=0s
	// allowed=false remaining=0 retry-after=1s
}
