package hub_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		h := node(t, db, hub.Config{})
		s, r := subscribe(t, h, "default", "orders", nil)
		if r.Gap || len(r.Missed) != 0 || r.Position.Offset != 0 || !strings.HasPrefix(r.Position.Epoch, h.Epoch()+"-") {
			t.Fatalf("first subscription = %+v, want position 0 in an epoch of %s", r, h.Epoch())
		}
		other, _ := subscribe(t, h, "default", "other", nil)

		before := time.Now().Add(-time.Millisecond)
		publish(t, h, "default", "orders", "order.created", `{ "id": 1,  "items": ["a", "b"] }`)
		publish(t, h, "default", "other", "noise", `1`)
		publish(t, h, "default", "orders", "order.paid", ``)
		publish(t, h, "default", "orders", "order.shipped", `"<&>"`)
		after := time.Now().Add(time.Millisecond)

		ms := take(t, s, 3)
		want := []struct{ typ, data string }{
			{"order.created", `{"id":1,"items":["a","b"]}`},
			{"order.paid", `null`},
			{"order.shipped", `"<&>"`},
		}
		for i, m := range ms {
			if m.Topic != "orders" || m.Type != want[i].typ || string(m.Data) != want[i].data {
				t.Errorf("message %d = %s %s %s, want orders %s %s", i, m.Topic, m.Type, m.Data, want[i].typ, want[i].data)
			}
			if m.Offset != uint64(i+1) || m.Epoch != r.Position.Epoch {
				t.Errorf("message %d at %d@%s, want %d@%s", i, m.Offset, m.Epoch, i+1, r.Position.Epoch)
			}
			if m.Time.Before(before) || m.Time.After(after) {
				t.Errorf("message %d time %v, want within [%v, %v]", i, m.Time, before, after)
			}
		}
		// The JSON form clients get.
		b, err := json.Marshal(ms[0])
		if err != nil {
			t.Fatal(err)
		}
		var shape map[string]any
		if err := json.Unmarshal(b, &shape); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"topic", "offset", "epoch", "type", "data", "time"} {
			if _, ok := shape[k]; !ok {
				t.Errorf("JSON %s lacks %q", b, k)
			}
		}
		if m := next(t, other); string(m.Data) != "1" || m.Offset != 1 {
			t.Errorf("other topic got %s at %d", m.Data, m.Offset)
		}
		quiet(t, s, "orders")
	})
}

// Concurrent publishers: every subscriber of a topic sees the same order,
// numbered without holes, which keeps each publisher's own order.
func TestOrderConcurrentPublishers(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		h := node(t, db, hub.Config{SubscriberBuffer: 1000})
		topics := []string{"t0", "t1", "t2"}
		const publishers, each = 4, 60
		subs := map[string][]*hub.Subscriber{}
		for _, topic := range topics {
			for range 2 {
				s, _ := subscribe(t, h, "default", topic, nil)
				subs[topic] = append(subs[topic], s)
			}
		}
		var wg sync.WaitGroup
		for p := range publishers {
			wg.Go(func() {
				for i := range each {
					topic := topics[i%len(topics)]
					if err := h.Publish(t.Context(), "default", topic, "x", json.RawMessage(fmt.Sprintf(`[%d,%d]`, p, i))); err != nil {
						t.Errorf("Publish: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		perTopic := publishers * each / len(topics)
		for _, topic := range topics {
			a := take(t, subs[topic][0], perTopic)
			b := take(t, subs[topic][1], perTopic)
			checkOffsets(t, topic, a, 1)
			if !slices.Equal(datas(a), datas(b)) {
				t.Fatalf("%s: two subscribers saw different orders:\n%v\n%v", topic, datas(a), datas(b))
			}
			last := map[int]int{}
			for _, d := range datas(a) {
				var pi [2]int
				if err := json.Unmarshal([]byte(d), &pi); err != nil {
					t.Fatal(err)
				}
				if prev, ok := last[pi[0]]; ok && pi[1] <= prev {
					t.Fatalf("%s: publisher %d's message %d came after its %d", topic, pi[0], pi[1], prev)
				}
				last[pi[0]] = pi[1]
			}
		}
	})
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	h := node(t, "sqlite:"+testdb.SQLitePath(t), hub.Config{})
	a, _ := subscribe(t, h, "acme", "orders", nil)
	b, _ := subscribe(t, h, "globex", "orders", nil)
	publish(t, h, "acme", "orders", "x", `"for acme"`)
	publish(t, h, "globex", "orders", "x", `"for globex"`)
	if m := next(t, a); string(m.Data) != `"for acme"` || m.Offset != 1 {
		t.Errorf("acme got %s at %d", m.Data, m.Offset)
	}
	if m := next(t, b); string(m.Data) != `"for globex"` || m.Offset != 1 {
		t.Errorf("globex got %s at %d", m.Data, m.Offset)
	}
	quiet(t, a, "acme")
	quiet(t, b, "globex")

	// A position in one tenant's topic means nothing in another's.
	_, r := subscribe(t, h, "globex", "orders2", nil)
	s := h.NewSubscriber("acme")
	defer s.Close()
	if r2, err := s.Subscribe("orders2", &r.Position); err != nil || !r2.Gap {
		t.Errorf("resuming acme/orders2 from globex/orders2's position = %+v, %v; want a gap", r2, err)
	}
}

// A resume races a publisher: the replay and the live messages together are
// exactly what came after the position, in order.
func TestResumeNoLossNoDuplicate(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		const total = 300
		h := node(t, db, hub.Config{HistorySize: 1000, SubscriberBuffer: 1000})
		watch, start := subscribe(t, h, "default", "race", nil)

		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range total {
				if err := h.Publish(t.Context(), "default", "race", "x", json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		}()

		// Resume from positions taken while messages keep coming: the
		// start, and after a few messages seen.
		positions := []hub.Position{start.Position}
		var seen []*hub.Message
		for _, at := range []int{1, 7, 50, 120} {
			for len(seen) < at {
				seen = append(seen, next(t, watch))
			}
			positions = append(positions, seen[at-1].Position())
		}
		type resumed struct {
			s    *hub.Subscriber
			from uint64
			got  []*hub.Message
		}
		var rs []resumed
		for _, p := range positions {
			s, r := subscribe(t, h, "default", "race", &p)
			if r.Gap {
				t.Fatalf("resume from %d: gap with a history of 1000", p.Offset)
			}
			rs = append(rs, resumed{s: s, from: p.Offset, got: r.Missed})
		}
		<-done
		seen = append(seen, take(t, watch, total-len(seen))...)
		checkOffsets(t, "watcher", seen, 1)
		if want := seq(0, total); !slices.Equal(datas(seen), want) {
			t.Fatalf("watcher saw %v", datas(seen))
		}
		for _, r := range rs {
			got := append(r.got, take(t, r.s, total-int(r.from)-len(r.got))...)
			checkOffsets(t, fmt.Sprintf("resumed from %d", r.from), got, r.from+1)
			if want := seq(int(r.from), total); !slices.Equal(datas(got), want) {
				t.Fatalf("resumed from %d: got %v, want %v", r.from, datas(got), want)
			}
			quiet(t, r.s, fmt.Sprintf("resumed from %d", r.from))
		}
	})
}

// History bounded by count: a position older than what is kept gets a gap.
func TestGapWhenHistoryFull(t *testing.T) {
	t.Parallel()
	h := node(t, "sqlite:"+testdb.SQLitePath(t), hub.Config{HistorySize: 5})
	watch, start := subscribe(t, h, "default", "news", nil)
	for _, d := range seq(0, 10) {
		publish(t, h, "default", "news", "x", d)
	}
	ms := take(t, watch, 10)
	epoch := start.Position.Epoch
	for _, c := range []struct {
		from    uint64
		gap     bool
		missing []string
	}{
		{0, true, nil},
		{4, true, nil}, // 5 is gone
		{5, false, seq(5, 10)},
		{8, false, seq(8, 10)},
		{10, false, nil},
		{11, true, nil}, // never reached
	} {
		s := h.NewSubscriber("default")
		r, err := s.Subscribe("news", &hub.Position{Offset: c.from, Epoch: epoch})
		s.Close()
		if err != nil || r.Gap != c.gap || !slices.Equal(datas(r.Missed), c.missing) {
			t.Errorf("resume from %d = gap %v, missed %v, %v; want gap %v, missed %v", c.from, r.Gap, datas(r.Missed), err, c.gap, c.missing)
		}
		if r.Position != ms[9].Position() {
			t.Errorf("resume from %d: position %+v, want %+v", c.from, r.Position, ms[9].Position())
		}
	}
}

// A position from another epoch (a made-up one, another node's) gets a gap.
func TestGapOnEpochMismatch(t *testing.T) {
	t.Parallel()
	path := testdb.SQLitePath(t)
	a := node(t, "sqlite:"+path, hub.Config{})
	b := node(t, "sqlite:"+path, hub.Config{}) // a second node on the same file
	if a.Epoch() == b.Epoch() {
		t.Fatalf("two hubs share the epoch %s", a.Epoch())
	}
	sa, _ := subscribe(t, a, "default", "t", nil)
	sb, _ := subscribe(t, b, "default", "t", nil)
	publish(t, a, "default", "t", "x", `1`)
	ma, mb := next(t, sa), next(t, sb)
	if ma.Offset != mb.Offset || ma.Epoch == mb.Epoch {
		t.Fatalf("nodes numbered one message %d@%s and %d@%s", ma.Offset, ma.Epoch, mb.Offset, mb.Epoch)
	}
	for _, p := range []hub.Position{{Offset: 0, Epoch: mb.Epoch}, {Offset: 1, Epoch: mb.Epoch}, {Offset: 0, Epoch: "nonsense"}} {
		s := a.NewSubscriber("default")
		r, err := s.Subscribe("t", &p)
		s.Close()
		if err != nil || !r.Gap || len(r.Missed) != 0 {
			t.Errorf("resume on node a from %+v = %+v, %v; want a gap", p, r, err)
		}
	}
}

// A subscriber that does not read is closed with its reason; one that
// reads the same topic gets everything.
func TestSlowSubscriberEvicted(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		h := node(t, db, hub.Config{SubscriberBuffer: 4})
		slow, _ := subscribe(t, h, "default", "feed", nil)
		if _, err := slow.Subscribe("other", nil); err != nil {
			t.Fatal(err)
		}
		fast, _ := subscribe(t, h, "default", "feed", nil)

		// In lockstep with the fast one, which a burst could overrun too:
		// a buffer of 4 holds no more.
		const total = 40
		var got []*hub.Message
		for _, d := range seq(0, total) {
			publish(t, h, "default", "feed", "x", d)
			got = append(got, next(t, fast))
		}
		if !slices.Equal(datas(got), seq(0, total)) {
			t.Fatalf("fast subscriber got %v", datas(got))
		}
		testdb.Receive(t, slow.Done(), "the slow subscriber's eviction")
		err := slow.Err()
		if !errors.Is(err, hub.ErrSlowConsumer) || err.Error() != "slow consumer: buffer of 4 messages full" {
			t.Errorf("slow subscriber's reason = %v, want ErrSlowConsumer: buffer of 4 messages full", err)
		}
		if len(slow.C()) != 4 {
			t.Errorf("slow subscriber holds %d messages, want its buffer's 4", len(slow.C()))
		}
		if _, err := slow.Subscribe("again", nil); !errors.Is(err, hub.ErrSlowConsumer) {
			t.Errorf("Subscribe after eviction = %v, want the eviction's reason", err)
		}
		// Its other topic no longer holds it either.
		publish(t, h, "default", "other", "x", `1`)
		publish(t, h, "default", "feed", "x", `"marker"`)
		next(t, fast)
		if st := h.Stats(); st.Subscribers != 1 {
			t.Errorf("Stats = %+v, want one open subscriber", st)
		}
	})
}

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	h := node(t, "sqlite:"+testdb.SQLitePath(t), hub.Config{})
	s, _ := subscribe(t, h, "default", "a", nil)
	if _, err := s.Subscribe("b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscribe("b", nil); !errors.Is(err, hub.ErrInvalid) {
		t.Errorf("second Subscribe to one topic = %v, want ErrInvalid", err)
	}
	s.Unsubscribe("a")
	s.Unsubscribe("never")
	publish(t, h, "default", "a", "x", `"a"`)
	publish(t, h, "default", "b", "x", `"b"`)
	if m := next(t, s); string(m.Data) != `"b"` {
		t.Errorf("got %s from %s after unsubscribing from a", m.Data, m.Topic)
	}
	s.Close()
	s.Close()
	testdb.Receive(t, s.Done(), "Done after Close")
	if !errors.Is(s.Err(), hub.ErrClosed) {
		t.Errorf("Err after Close = %v, want ErrClosed", s.Err())
	}
}

func TestInvalidPublish(t *testing.T) {
	t.Parallel()
	h := node(t, "sqlite:"+testdb.SQLitePath(t), hub.Config{MaxMessageBytes: 100})
	s, _ := subscribe(t, h, "default", "t", nil)
	long := strings.Repeat("x", 300)
	for name, o := range map[string]hub.Outgoing{
		"no tenant":       {Topic: "t", Type: "x"},
		"no topic":        {Tenant: "default", Type: "x"},
		"no type":         {Tenant: "default", Topic: "t"},
		"long topic":      {Tenant: "default", Topic: long, Type: "x"},
		"control char":    {Tenant: "default", Topic: "t\n", Type: "x"},
		"bad JSON":        {Tenant: "default", Topic: "t", Type: "x", Data: json.RawMessage(`{"a":`)},
		"two values":      {Tenant: "default", Topic: "t", Type: "x", Data: json.RawMessage(`1 2`)},
		"invalid UTF-8":   {Tenant: "default", Topic: "t", Type: "x", Data: json.RawMessage("\"\xff\"")},
		"data over limit": {Tenant: "default", Topic: "t", Type: "x", Data: json.RawMessage(`"` + long + `"`)},
	} {
		// In a batch with a valid message: nothing at all is published.
		err := h.PublishBatch(t.Context(), []hub.Outgoing{{Tenant: "default", Topic: "t", Type: "x", Data: json.RawMessage(`"valid"`)}, o})
		if !errors.Is(err, hub.ErrInvalid) {
			t.Errorf("%s: PublishBatch = %v, want ErrInvalid", name, err)
		}
	}
	publish(t, h, "default", "t", `type "quoted" \ slashed`, `"marker"`)
	if m := next(t, s); string(m.Data) != `"marker"` || m.Offset != 1 || m.Type != `type "quoted" \ slashed` {
		t.Errorf("first message = %s %q at %d; want the marker at 1", m.Data, m.Type, m.Offset)
	}
	if _, err := s.Subscribe("", nil); !errors.Is(err, hub.ErrInvalid) {
		t.Errorf("Subscribe(\"\") = %v, want ErrInvalid", err)
	}
}

// PublishBatch keeps its order, also across several sends and stored
// payloads.
func TestPublishBatch(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		h := node(t, db, hub.Config{SubscriberBuffer: 5000})
		s, _ := subscribe(t, h, "default", "bulk", nil)
		big := strings.Repeat("y", 60000)
		var out []hub.Outgoing
		var want []string
		for i := range 3000 {
			d := fmt.Sprintf(`{"i":%d}`, i)
			if i%100 == 0 {
				d = fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, big) // 30 of these: several sends
			}
			out = append(out, hub.Outgoing{Tenant: "default", Topic: "bulk", Type: "x", Data: json.RawMessage(d)})
			want = append(want, d)
		}
		if err := h.PublishBatch(t.Context(), out); err != nil {
			t.Fatalf("PublishBatch: %v", err)
		}
		got := take(t, s, len(want))
		checkOffsets(t, "bulk", got, 1)
		if !slices.Equal(datas(got), want) {
			t.Fatal("batch arrived out of order or altered")
		}
	})
}

func TestStop(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite:"+testdb.SQLitePath(t))
	h, err := hub.New(hub.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	st.Listen(h.Notify)
	if err := h.Publish(t.Context(), "default", "t", "x", nil); !errors.Is(err, hub.ErrStopped) {
		t.Errorf("Publish before Start = %v, want ErrStopped", err)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	a, _ := subscribe(t, h, "default", "t", nil)
	idle := h.NewSubscriber("default") // subscribed to nothing
	defer idle.Close()
	h.Stop()
	h.Stop()
	for _, s := range []*hub.Subscriber{a, idle, h.NewSubscriber("default")} {
		testdb.Receive(t, s.Done(), "Done after Stop")
		if !errors.Is(s.Err(), hub.ErrStopped) {
			t.Errorf("Err after Stop = %v, want ErrStopped", s.Err())
		}
	}
	if err := h.Publish(t.Context(), "default", "t", "x", nil); !errors.Is(err, hub.ErrStopped) {
		t.Errorf("Publish after Stop = %v, want ErrStopped", err)
	}
	if err := h.Start(t.Context()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

// When the store may have lost notifications, every subscriber is closed
// and old positions get gaps.
func TestResync(t *testing.T) {
	t.Parallel()
	st := openStore(t, "sqlite:"+testdb.SQLitePath(t))
	h := startHub(t, st, hub.Config{})
	s, _ := subscribe(t, h, "default", "t", nil)
	publish(t, h, "default", "t", "x", `1`)
	m := next(t, s)
	h.Notify(store.Notification{Kind: store.NotifyResync})
	testdb.Receive(t, s.Done(), "Done after a resync")
	if !errors.Is(s.Err(), hub.ErrResync) {
		t.Errorf("Err = %v, want ErrResync", s.Err())
	}
	s2, r := subscribe(t, h, "default", "t", &hub.Position{Offset: m.Offset, Epoch: m.Epoch})
	if !r.Gap {
		t.Errorf("resume across a resync = %+v, want a gap", r)
	}
	publish(t, h, "default", "t", "x", `2`)
	if m := next(t, s2); string(m.Data) != "2" || m.Offset != 1 {
		t.Errorf("after the resync: %s at %d, want 2 at 1", m.Data, m.Offset)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	if _, err := hub.New(hub.Config{}); err == nil {
		t.Error("New without a store succeeded")
	}
	st := openStore(t, "sqlite:"+testdb.SQLitePath(t))
	for _, c := range []hub.Config{
		{Store: st, HistorySize: -1},
		{Store: st, SubscriberBuffer: -1},
		{Store: st, MaxMessageBytes: 1 << 30},
	} {
		if _, err := hub.New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}
