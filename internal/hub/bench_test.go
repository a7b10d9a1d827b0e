package hub_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// benchBackends runs fn on a fresh SQLite file and a fresh PostgreSQL
// database.
func benchBackends(b *testing.B, fn func(b *testing.B, db string)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, "sqlite:"+testdb.SQLitePath(b)) })
	b.Run("postgres", func(b *testing.B) { fn(b, testdb.PostgresURL(b)) })
}

// drainers subscribes n subscribers to topic, each drained by a goroutine
// of its own (the connection writer's part), which calls got for every
// message. Stopped by the returned function.
func drainers(b *testing.B, h *hub.Hub, topic string, n int, got func(i int, m *hub.Message)) (stop func()) {
	var wg sync.WaitGroup
	quit := make(chan struct{})
	for i := range n {
		s := h.NewSubscriber("default")
		if _, err := s.Subscribe(topic, nil); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer s.Close()
			for {
				select {
				case m := <-s.C():
					got(i, m)
				case <-s.Done():
					b.Errorf("subscriber %d closed: %v", i, s.Err())
					return
				case <-quit:
					return
				}
			}
		})
	}
	return func() { close(quit); wg.Wait() }
}

// BenchmarkFanout publishes to one topic with 1,000 subscribers as fast as
// they keep up, and reports the cost of each delivery (one message to one
// subscriber), end to end through the store, subscribers' goroutines
// included. The publisher stays at most a window ahead of the subscribers,
// as the slowest of many real connections would make it: otherwise the
// hub, which never waits, would simply evict them.
func BenchmarkFanout(b *testing.B) {
	benchBackends(b, func(b *testing.B, db string) {
		const subscribers, chunk, window = 1000, 32, 64
		h := node(b, db, hub.Config{SubscriberBuffer: 1024})
		var received, target atomic.Int64
		reached := make(chan struct{}, 1)
		stop := drainers(b, h, "fan", subscribers, func(int, *hub.Message) {
			if received.Add(1) == target.Load() {
				select {
				case reached <- struct{}{}:
				default:
				}
			}
		})
		defer stop()
		waitFor := func(n int64) {
			target.Store(n)
			for received.Load() < n {
				select {
				case <-reached:
				case <-time.After(waitTimeout):
					b.Fatalf("deliveries stalled at %d, want %d", received.Load(), n)
				}
			}
		}
		data := json.RawMessage(`{"job":12345,"state":"succeeded","queue":"default"}`)
		out := make([]hub.Outgoing, chunk)
		for i := range out {
			out[i] = hub.Outgoing{Tenant: "default", Topic: "fan", Type: "job.succeeded", Data: data}
		}
		b.ResetTimer()
		for sent := 0; sent < b.N; sent += chunk {
			if err := h.PublishBatch(b.Context(), out[:min(chunk, b.N-sent)]); err != nil {
				b.Fatal(err)
			}
			waitFor(int64(max(0, sent-window)) * subscribers)
		}
		waitFor(int64(b.N) * subscribers)
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*subscribers), "ns/delivery")
	})
}

// latencySubscribers is a variable so that experiments can change it.
var latencySubscribers = 1000

// BenchmarkLatency publishes 1,000 messages a second to one topic with
// 1,000 subscribers and reports the publish → receive latency over every
// delivery. Run it with -benchtime=3000x or so.
func BenchmarkLatency(b *testing.B) {
	benchBackends(b, func(b *testing.B, db string) {
		subscribers := latencySubscribers
		h := node(b, db, hub.Config{})
		lat := make([][]time.Duration, subscribers)
		for i := range lat {
			lat[i] = make([]time.Duration, 0, b.N)
		}
		var received atomic.Int64
		all := make(chan struct{})
		want := int64(b.N) * int64(subscribers)
		stop := drainers(b, h, "lat", subscribers, func(i int, m *hub.Message) {
			lat[i] = append(lat[i], time.Since(m.Time))
			if received.Add(1) == want {
				close(all)
			}
		})
		defer stop()
		data := json.RawMessage(`{"job":12345,"state":"succeeded","queue":"default"}`)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var wg sync.WaitGroup
		b.ResetTimer()
		for range b.N {
			<-tick.C
			wg.Go(func() {
				if err := h.Publish(b.Context(), "default", "lat", "job.succeeded", data); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		testdb.Receive(b, all, "every delivery")
		b.StopTimer()
		var ds []time.Duration
		for _, l := range lat {
			ds = append(ds, l...)
		}
		slices.Sort(ds)
		pct := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))]) / 1e6 }
		b.ReportMetric(pct(0.5), "p50_ms")
		b.ReportMetric(pct(0.99), "p99_ms")
		b.ReportMetric(pct(1), "max_ms")
	})
}

// BenchmarkSubscriberBytes reports the heap one subscriber costs, over
// 10,000 subscribers spread over 100 topics.
func BenchmarkSubscriberBytes(b *testing.B) {
	h := node(b, "sqlite:"+testdb.SQLitePath(b), hub.Config{})
	const n = 10000
	subs := make([]*hub.Subscriber, n)
	var perSub float64
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range subs {
			subs[i] = h.NewSubscriber("default")
			if _, err := subs[i].Subscribe(fmt.Sprintf("topic-%d", i%100), nil); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perSub = float64(after.HeapAlloc-before.HeapAlloc) / n
		for _, s := range subs {
			s.Close()
		}
		clear(subs)
	}
	b.ReportMetric(perSub, "bytes/subscriber")
}
