package queue

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/store/postgres"
	"github.com/switchyard-dev/switchyard/internal/store/sqlite"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// eventRecorder is an EventSink that hands every event to the test.
type eventRecorder struct{ ch chan Event }

func newEventRecorder() *eventRecorder { return &eventRecorder{ch: make(chan Event, 1024)} }

func (r *eventRecorder) Add(evs ...Event) {
	for _, ev := range evs {
		r.ch <- ev
	}
}

func (r *eventRecorder) Hold() func([]Event) { return func(evs []Event) { r.Add(evs...) } }

// next returns the next event of type typ, skipping others.
func (r *eventRecorder) next(t *testing.T, typ string) Event {
	t.Helper()
	for {
		ev := testdb.Receive(t, r.ch, typ)
		if ev.Type == typ {
			return ev
		}
	}
}

func openStore(t *testing.T, db string) store.Store {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	var (
		st  store.Store
		err error
	)
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		st, err = sqlite.Open(ctx, sqlite.Config{Path: path, Logger: log})
	} else {
		st, err = postgres.Open(ctx, postgres.Config{URL: db, Logger: log})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func startRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return r
}

// The leader announces the jobs it rescues from a dead worker: retrying
// with the retry time while attempts remain, dead on the last.
func TestRescueEvents(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		st := openStore(t, db)
		insert := func(maxAttempts int) *store.Job {
			res, err := st.Insert(ctx, []store.InsertParams{{TenantID: "default", Queue: "q", Kind: "k", Args: []byte(`{}`), Priority: 2, MaxAttempts: maxAttempts}})
			if err != nil {
				t.Fatal(err)
			}
			return res[0].Job
		}
		retry, last := insert(2), insert(1)
		// A worker elsewhere leases both and dies.
		if js, err := st.Lease(ctx, store.LeaseParams{TenantID: "default", Queue: "q", Limit: 2, LeasedBy: "dead", Duration: time.Millisecond}); err != nil || len(js) != 2 {
			t.Fatalf("lease = %d jobs, %v", len(js), err)
		}
		rec := newEventRecorder()
		startRunner(t, Config{Store: st, NodeID: "leader", Events: rec, Retry: fixedRetry(time.Hour),
			Maintenance: MaintenanceConfig{LeaderTTL: 300 * time.Millisecond}})

		before := time.Now()
		got := map[int64]Event{}
		for len(got) < 2 {
			ev := testdb.Receive(t, rec.ch, "rescue events")
			if ev.JobID != 0 {
				got[ev.JobID] = ev
			}
		}
		if ev := got[retry.ID]; ev.Type != EventJobRetrying || ev.State != store.StateRetryable || ev.Attempt != 1 ||
			ev.Error == "" || ev.RunAt.Before(before.Add(50*time.Minute)) || ev.Queue != "q" || ev.TenantID != "default" {
			t.Errorf("event of the job with an attempt left = %+v, want job.retrying, run_at in about an hour", ev)
		}
		if ev := got[last.ID]; ev.Type != EventJobDead || ev.State != store.StateDead || ev.Attempt != 1 || ev.Error == "" {
			t.Errorf("event of the job on its last attempt = %+v, want job.dead", ev)
		}
	})
}

// A node announces itself online when it starts, again when it finds the
// registry forgot it (the leader declared it offline while it stalled), and
// offline when it stops.
func TestNodeEvents(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		st := openStore(t, db)
		rec := newEventRecorder()
		r, err := New(Config{Store: st, NodeID: "n1", TenantID: "acme", Events: rec, Logger: slog.New(slog.DiscardHandler),
			Queues:      map[string]QueueConfig{"b": {}, "a": {}},
			Maintenance: MaintenanceConfig{Disabled: true, LeaderTTL: 300 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		ev := rec.next(t, EventWorkerOnline)
		if n := ev.Node; ev.TenantID != "acme" || n == nil || n.ID != "n1" || n.TenantID != "acme" || len(n.Queues) != 2 || n.Queues[0] != "a" ||
			n.StartedAt.IsZero() || n.Timeout != 400*time.Millisecond {
			t.Fatalf("worker.online = %+v, node %+v", ev, ev.Node)
		}
		if _, err := st.DeleteNode(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		// Heartbeats go on without maintenance; the next finds the row gone.
		if ev := rec.next(t, EventWorkerOnline); ev.Node.ID != "n1" {
			t.Fatalf("second worker.online = %+v", ev.Node)
		}
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := r.Stop(stopCtx); err != nil {
			t.Fatal(err)
		}
		if ev := rec.next(t, EventWorkerOffline); ev.Node.ID != "n1" || ev.TenantID != "acme" {
			t.Fatalf("worker.offline = %+v", ev)
		}
		if ns, err := st.ListNodes(ctx, ""); err != nil || len(ns) != 0 {
			t.Fatalf("nodes after a graceful stop = %v, %v; want none", ns, err)
		}
	})
}
