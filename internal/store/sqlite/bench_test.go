package sqlite

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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

// BenchmarkRecordEvents records one webhook-sized event per call from 64
// callers at once, as the ingest path does, with and without a job from a
// matching rule: the difference is what a rule costs the writer.
func BenchmarkRecordEvents(b *testing.B) {
	body := []byte(`{"specversion":"1.0","id":"x","source":"/hooks/github","type":"github.push","data":{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"full_name":"acme/site"}}}`)
	for _, durability := range []string{"full", "relaxed"} {
		for _, jobs := range []int{0, 1} {
			b.Run(fmt.Sprintf("%s/jobs=%d", durability, jobs), func(b *testing.B) {
				s := openTest(b, Config{Durability: durability})
				ctx := context.Background()
				var seq atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(32) // 64 callers on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						n := seq.Add(1)
						rec := store.EventRecord{Event: store.Event{TenantID: "default", Source: "/hooks/github",
							EventID: fmt.Sprintf("%08x-6b1c-4a5e-9d3f-%012x", n*2654435761%(1<<32), n), Type: "github.push",
							Time: time.Now(), Body: body}}
						if jobs > 0 {
							rec.Jobs = []store.InsertParams{{TenantID: "default", Queue: "ingest", Kind: "noop",
								Args: []byte(`{"ref":"refs/heads/main"}`), Priority: 2, MaxAttempts: 25}}
							rec.Outcomes = []store.RuleOutcome{{RuleID: "rul_1", RuleName: "bench", Matched: true,
								Actions: []store.ActionOutcome{{Action: "enqueue", Job: 0}}}}
						}
						if _, err := s.RecordEvents(ctx, []store.EventRecord{rec}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(s.w.commits.Load()), "µs/commit")
			})
		}
	}
}
