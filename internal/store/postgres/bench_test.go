package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// Throughput benchmarks of the two hot paths. They report jobs/s; ns/op is
// per Insert call (1,000 jobs) for the insert benchmark and per job for the
// lease-and-complete one. Run them with, for example:
//
//	go test -run '^$' -bench . -benchtime 5s ./internal/store/postgres/

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.Context(), Config{URL: testdb.PostgresURL(b)})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func noopJobs(n int, queue string) []store.InsertParams {
	ps := make([]store.InsertParams, n)
	for i := range ps {
		ps[i] = store.InsertParams{
			TenantID: "default", Queue: queue, Kind: "noop", Args: []byte(`{}`),
			Priority: 2, MaxAttempts: 25,
		}
	}
	return ps
}

// BenchmarkInsertBatch1000 inserts no-op jobs with Insert calls of 1,000,
// from conc goroutines at once.
func BenchmarkInsertBatch1000(b *testing.B) {
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			s := openBench(b)
			ps := noopJobs(1000, "bench")
			ctx := b.Context()
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range conc {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Insert(ctx, ps); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(ps))/elapsed.Seconds(), "jobs/s")
		})
	}
}

// BenchmarkLeaseComplete works b.N no-op jobs inserted beforehand: conc
// workers each lease up to 500 jobs and complete them as succeeded in one
// Complete call, until the queue is empty.
func BenchmarkLeaseComplete(b *testing.B) {
	for _, conc := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			s := openBench(b)
			ctx := b.Context()
			for left := b.N; left > 0; left -= 1000 {
				if _, err := s.Insert(ctx, noopJobs(min(left, 1000), "bench")); err != nil {
					b.Fatal(err)
				}
			}
			var done atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range conc {
				wg.Go(func() {
					if err := leaseCompleteLoop(ctx, s, fmt.Sprint("w", w), &done, int64(b.N)); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := done.Load(); n != int64(b.N) {
				b.Fatalf("worked %d jobs, want %d", n, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
		})
	}
}

func leaseCompleteLoop(ctx context.Context, s *Store, worker string, done *atomic.Int64, total int64) error {
	cs := make([]store.Completion, 0, 500)
	for done.Load() < total {
		js, err := s.Lease(ctx, store.LeaseParams{TenantID: "default", Queue: "bench", Limit: 500, LeasedBy: worker, Duration: time.Minute})
		if err != nil {
			return err
		}
		if len(js) == 0 {
			// Other workers hold the rest (SKIP LOCKED); they will finish.
			if done.Load() >= total {
				return nil
			}
			continue
		}
		cs = cs[:0]
		for _, j := range js {
			cs = append(cs, store.Completion{
				Lease:   store.Lease{JobID: j.ID, Attempt: j.Attempt, Token: j.LeaseToken},
				Outcome: store.OutcomeSucceeded,
			})
		}
		errs, err := s.Complete(ctx, cs)
		if err != nil {
			return err
		}
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
		done.Add(int64(len(js)))
	}
	return nil
}
