package switchyard

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/store"
)

func eventTypes(evs []queue.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// A held place keeps back everything behind it until it is released, so
// an event committed before a change another goroutine reports first is
// still published first.
func TestEventPublisherHoldKeepsOrder(t *testing.T) {
	t.Parallel()
	p, err := newEventPublisher(nil, 100, -1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Add(queue.Event{Type: "a"})
	release := p.Hold()
	p.Add(queue.Event{Type: "c"}, queue.Event{Type: "d"})
	p.take()
	if got := eventTypes(p.batch); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("ready while held = %v, want [a]", got)
	}
	release([]queue.Event{{Type: "b"}})
	p.Add(queue.Event{Type: "e"})
	p.take()
	if got := eventTypes(p.batch); !slices.Equal(got, []string{"b", "c", "d", "e"}) {
		t.Fatalf("ready after release = %v, want [b c d e]", got)
	}
	// A write that failed releases nothing, and unblocks what follows.
	release = p.Hold()
	p.Add(queue.Event{Type: "f"})
	release(nil)
	p.take()
	if got := eventTypes(p.batch); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("ready after an empty release = %v, want [f]", got)
	}
	if p.queued != 0 {
		t.Fatalf("queued = %d after taking everything", p.queued)
	}
}

// Beyond its buffer the publisher drops new events and counts them; it
// never blocks.
func TestEventPublisherDropsWhenFull(t *testing.T) {
	t.Parallel()
	p, err := newEventPublisher(nil, 3, -1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Add(queue.Event{Type: "a"})
	release := p.Hold()
	p.Add(queue.Event{Type: "b"}, queue.Event{Type: "c"}, queue.Event{Type: "x"}) // room for two
	p.Add(queue.Event{Type: "y"})
	release([]queue.Event{{Type: "z"}, {Type: "w"}}) // no room
	if got := p.drops.Load(); got != 4 {
		t.Fatalf("dropped %d, want 4", got)
	}
	p.take()
	if got := eventTypes(p.batch); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("kept %v, want [a b c]: what fits is kept, the rest dropped", got)
	}
	p.Add(queue.Event{Type: "d"})
	p.take()
	if got := eventTypes(p.batch); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("after taking, kept %v, want [d]: taking makes room", got)
	}
}

func TestEventData(t *testing.T) {
	t.Parallel()
	runAt := time.Date(2026, 11, 28, 10, 0, 0, 123456000, time.UTC)
	long := strings.Repeat("é", 600) // 1200 bytes
	cases := []struct {
		name string
		ev   queue.Event
		want JobEventData
	}{
		{"plain", queue.Event{Type: EventJobSucceeded, JobID: 42, Queue: "q", Kind: "k.x", State: "succeeded", Attempt: 1, MaxAttempts: 25},
			JobEventData{ID: "42", Queue: "q", Kind: "k.x", State: "succeeded", Attempt: 1, MaxAttempts: 25}},
		{"error and run_at", queue.Event{Type: EventJobRetrying, JobID: 7, Queue: "q", Kind: "k", State: "retryable", Attempt: 2, MaxAttempts: 3,
			Error: "bad \"quote\"\n\ttab \x01 \xff end", RunAt: runAt},
			JobEventData{ID: "7", Queue: "q", Kind: "k", State: "retryable", Attempt: 2, MaxAttempts: 3,
				Error: "bad \"quote\"\n\ttab \x01 \ufffd end", RunAt: &runAt}},
		{"long error", queue.Event{Type: EventJobDead, JobID: 8, Queue: "q", Kind: "k", State: "dead", Attempt: 3, MaxAttempts: 3, Error: long},
			JobEventData{ID: "8", Queue: "q", Kind: "k", State: "dead", Attempt: 3, MaxAttempts: 3, Error: long[:1024]}},
		{"progress", queue.Event{Type: EventJobProgress, JobID: 9, Queue: "q", Kind: "k", State: "running", Attempt: 1, MaxAttempts: 1, Progress: []byte(`{"done":3}`)},
			JobEventData{ID: "9", Queue: "q", Kind: "k", State: "running", Attempt: 1, MaxAttempts: 1, Progress: json.RawMessage(`{"done":3}`)}},
		{"progress too large", queue.Event{Type: EventJobProgress, JobID: 9, Queue: "q", Kind: "k", State: "running", Attempt: 1, MaxAttempts: 1,
			Progress: []byte(`"` + strings.Repeat("x", maxEventProgress) + `"`)},
			JobEventData{ID: "9", Queue: "q", Kind: "k", State: "running", Attempt: 1, MaxAttempts: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := appendEventData(nil, &tc.ev)
			if !json.Valid(b) {
				t.Fatalf("not JSON: %s", b)
			}
			var got JobEventData
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			same := got.ID == tc.want.ID && got.Queue == tc.want.Queue && got.Kind == tc.want.Kind && got.State == tc.want.State &&
				got.Attempt == tc.want.Attempt && got.MaxAttempts == tc.want.MaxAttempts && got.Error == tc.want.Error &&
				string(got.Progress) == string(tc.want.Progress) &&
				(got.RunAt == nil) == (tc.want.RunAt == nil) && (got.RunAt == nil || got.RunAt.Equal(*tc.want.RunAt))
			if !same {
				t.Fatalf("%s decodes to %+v, want %+v", b, got, tc.want)
			}
		})
	}

	// A node that stopped gracefully is gone from the registry; its event
	// says offline all the same.
	n := store.NodeInfo{ID: "n1", TenantID: "default", Hostname: "h", StartedAt: runAt, LastSeenAt: runAt}
	var w Worker
	if err := json.Unmarshal(appendEventData(nil, &queue.Event{Type: EventWorkerOffline, Node: &n}), &w); err != nil {
		t.Fatal(err)
	}
	if w.ID != "n1" || w.State != WorkerOffline || w.OfflineAt == nil || w.Queues == nil {
		t.Fatalf("graceful worker.offline data = %+v", w)
	}
	var q QueueEventData
	if err := json.Unmarshal(appendEventData(nil, &queue.Event{Type: EventQueuePaused, Queue: "mail"}), &q); err != nil || q != (QueueEventData{Queue: "mail", Paused: true}) {
		t.Fatalf("queue.paused data = %+v, %v", q, err)
	}
}

// Past its rate the publisher waits (so the buffer fills and new events are
// dropped); a stopping publisher does not wait.
func TestEventPublisherPaceStops(t *testing.T) {
	t.Parallel()
	p, err := newEventPublisher(nil, 100, 1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.pace(0) {
		t.Fatal("pace(0) refused")
	}
	close(p.quit)
	if p.pace(1000) {
		t.Fatal("pace past the rate went ahead while stopping; want it to give up")
	}
	p.rate = -1
	if !p.pace(1 << 20) {
		t.Fatal("pace without a rate refused")
	}
}
