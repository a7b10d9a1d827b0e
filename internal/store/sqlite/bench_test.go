package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// benchJobs returns n no-op jobs as the engine would enqueue them.
func benchJobs(n int) []store.InsertParams {
	ps := make([]store.InsertParams, n)
	for i := range ps {
		ps[i] = store.InsertParams{TenantID: "default", Queue: "bench", Kind: "noop", Args: []byte(`{}`), Priority: 2, MaxAttempts: 25}
	}
	return ps
}

// BenchmarkInsertBatch1000 inserts 1,000 jobs per Insert call, durably
// (synchronous=FULL), from one caller and from several at once.
func BenchmarkInsertBatch1000(b *testing.B) {
	for _, callers := range []int{1, 4} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s := openTest(b)
			ps := benchJobs(1000)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			next := make(chan struct{})
			go func() {
				for range b.N {
					next <- struct{}{}
				}
				close(next)
			}()
			for range callers {
				wg.Go(func() {
					for range next {
						if _, err := s.Insert(ctx, ps); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// BenchmarkLeaseComplete leases 500 jobs at a time and completes them with
// OutcomeSucceeded (durably), from one worker loop and from several.
func BenchmarkLeaseComplete(b *testing.B) {
	const batch = 500
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s := openTest(b)
			ctx := context.Background()
			ps := benchJobs(1000)
			for n := 0; n < b.N*batch; n += len(ps) {
				if _, err := s.Insert(ctx, ps); err != nil {
					b.Fatal(err)
				}
			}
			lp := store.LeaseParams{TenantID: "default", Queue: "bench", Limit: batch, LeasedBy: "bench", Duration: time.Minute}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			next := make(chan struct{})
			go func() {
				for range b.N {
					next <- struct{}{}
				}
				close(next)
			}()
			var mu sync.Mutex
			done := 0
			for range workers {
				wg.Go(func() {
					cs := make([]store.Completion, 0, batch)
					for range next {
						jobs, err := s.Lease(ctx, lp)
						if err != nil {
							b.Error(err)
							return
						}
						cs = cs[:0]
						for _, j := range jobs {
							cs = append(cs, store.Completion{Lease: store.Lease{JobID: j.ID, Attempt: j.Attempt, Token: j.LeaseToken}, Outcome: store.OutcomeSucceeded})
						}
						res, err := s.Complete(ctx, cs)
						if err != nil {
							b.Error(err)
							return
						}
						for _, e := range res {
							if e != nil {
								b.Error(e)
								return
							}
						}
						mu.Lock()
						done += len(jobs)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
