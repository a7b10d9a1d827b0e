package ratelimit

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// BenchmarkLocalAllow measures local mode with 32 goroutines per P (64 on
// the project's 2-core machines), on one hot key and spread over 10,000.
func BenchmarkLocalAllow(b *testing.B) {
	for _, nkeys := range []int{1, 10000} {
		b.Run(strconv.Itoa(nkeys)+"keys", func(b *testing.B) {
			keys := make([]string, nkeys)
			for i := range keys {
				keys[i] = "tenant/key-" + strconv.Itoa(i)
			}
			l, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			lim := Limit{Rate: 20000, Burst: 1000}
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919))
				for pb.Next() {
					i++
					if _, err := l.Allow(b.Context(), keys[i%nkeys], lim); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSharedAllow measures shared mode on PostgreSQL with a limit high
// enough that requests are admitted from leased tokens (chunks of 50,000);
// it reports the TakeTokens round trips per request.
func BenchmarkSharedAllow(b *testing.B) {
	c := &counted{TokenStore: openStore(b, testdb.PostgresURL(b))}
	l, err := New(Config{Store: c})
	if err != nil {
		b.Fatal(err)
	}
	lim := Limit{Rate: 1e8, Burst: 1000000}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Allow(b.Context(), "tenant/key", lim); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(c.calls.Load())/float64(b.N), "roundtrips/op")
}
