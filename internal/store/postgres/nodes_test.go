package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// Tests with several Stores on one database, as several nodes run.

func TestTwoNodesLeader(t *testing.T) {
	checkLeaks(t)
	url := testdb.PostgresURL(t)
	a, _ := openListening(t, url)
	b, recB := openListening(t, url)
	ctx := t.Context()
	nodes := []*Store{a, b}

	for round := range 5 {
		name := fmt.Sprint("maint-", round)
		won := make([]bool, len(nodes))
		errs := make([]error, len(nodes))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, s := range nodes {
			wg.Go(func() {
				<-start
				won[i], errs[i] = s.TryLead(ctx, name, fmt.Sprint("node-", i), time.Hour)
			})
		}
		close(start)
		wg.Wait()
		leaders := 0
		for i := range nodes {
			if errs[i] != nil {
				t.Fatalf("round %d: node-%d: TryLead: %v", round, i, errs[i])
			}
			if won[i] {
				leaders++
			}
		}
		if leaders != 1 {
			t.Fatalf("round %d: %d nodes lead %q, want exactly 1", round, leaders, name)
		}
	}

	// node-0 on a takes a fresh name; node-1 on b waits for the resignation,
	// which reaches b through its listener, and then leads.
	if ok, err := a.TryLead(ctx, "handover", "node-0", time.Hour); err != nil || !ok {
		t.Fatalf("a: TryLead(handover) = %v, %v", ok, err)
	}
	if ok, err := b.TryLead(ctx, "handover", "node-1", time.Hour); err != nil || ok {
		t.Fatalf("b: TryLead while a leads = %v, %v; want false", ok, err)
	}
	if err := a.Resign(ctx, "handover", "node-0"); err != nil {
		t.Fatalf("a: Resign: %v", err)
	}
	recB.waitFor(t, "leader on the other node", isKind(store.NotifyLeader))
	if ok, err := b.TryLead(ctx, "handover", "node-1", time.Hour); err != nil || !ok {
		t.Fatalf("b: TryLead after a resigned = %v, %v; want true", ok, err)
	}
}

// TestTwoNodesNotify checks that every kind of write notifies the other node
// through PostgreSQL (the writer's own deliveries are local and do not
// prove that), and that the writer receives each of its notifications once:
// its listener drops the copies of what it delivered locally.
func TestTwoNodesNotify(t *testing.T) {
	checkLeaks(t)
	url := testdb.PostgresURL(t)
	a, recA := openListening(t, url)
	_, recB := openListening(t, url)
	ctx := t.Context()
	const tenant = "default"

	lease := func(queue string) store.Lease {
		t.Helper()
		js, err := a.Lease(ctx, store.LeaseParams{TenantID: tenant, Queue: queue, Limit: 1, LeasedBy: "a", Duration: time.Hour})
		if err != nil || len(js) != 1 {
			t.Fatalf("Lease(%s) = %d jobs, %v", queue, len(js), err)
		}
		return store.Lease{JobID: js[0].ID, Attempt: js[0].Attempt, Token: js[0].LeaseToken}
	}
	complete := func(c store.Completion) {
		t.Helper()
		errs, err := a.Complete(ctx, []store.Completion{c})
		if err != nil || errs[0] != nil {
			t.Fatalf("Complete = %v, %v", errs, err)
		}
	}
	insert := func(ps ...store.InsertParams) []store.InsertResult {
		t.Helper()
		res, err := a.Insert(ctx, ps)
		if err != nil {
			t.Fatalf("Insert: %v", err)
		}
		return res
	}

	later := job("sched")
	later.Delay = 2 * time.Hour
	soon := job("sched2")
	soon.Delay = time.Hour
	res := insert(job("ins"), job("ins"), later, soon)
	n := recB.waitFor(t, "scheduled from Insert", isKind(store.NotifyScheduled))
	if !n.At.Equal(res[3].Job.RunAt) {
		t.Errorf("scheduled At = %v, want the earliest run_at %v", n.At, res[3].Job.RunAt)
	}
	recB.waitFor(t, "insert from Insert", isInsert(tenant, "ins"))

	keyed := job("uniq")
	keyed.UniqueKey = "u"
	insert(keyed)
	recB.waitFor(t, "insert from a unique Insert", isInsert(tenant, "uniq"))

	// Complete: released (available) and snoozed (scheduled) in one call,
	// which also carries a succeeded completion (the pipelined path).
	insert(job("rel"), job("snz"), job("ok"))
	rel, snz, ok := lease("rel"), lease("snz"), lease("ok")
	errs, err := a.Complete(ctx, []store.Completion{
		{Lease: rel, Outcome: store.OutcomeReleased},
		{Lease: snz, Outcome: store.OutcomeSnoozed, Delay: 10 * time.Minute},
		{Lease: ok, Outcome: store.OutcomeSucceeded},
	})
	if err != nil || errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("Complete = %v, %v", errs, err)
	}
	recB.waitFor(t, "insert from a release", isInsert(tenant, "rel"))
	recB.waitFor(t, "scheduled from a snooze", func(n store.Notification) bool {
		return n.Kind == store.NotifyScheduled && n.At.Before(res[3].Job.RunAt)
	})

	// Cancel of a running job.
	insert(job("cnl"))
	l := lease("cnl")
	if _, err := a.Cancel(ctx, tenant, l.JobID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	n = recB.waitFor(t, "cancel", isKind(store.NotifyCancel))
	if n.JobID != l.JobID || n.TenantID != tenant || n.Queue != "cnl" {
		t.Errorf("cancel notification %+v, want job %d of %s/cnl", n, l.JobID, tenant)
	}

	// Retry of the cancelled job.
	if _, err := a.Retry(ctx, tenant, l.JobID); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	recB.waitFor(t, "insert from Retry", isInsert(tenant, "cnl"))

	// Promotion of a failed job whose retry is due.
	insert(job("prm"))
	complete(store.Completion{Lease: lease("prm"), Outcome: store.OutcomeFailed, Error: "x", RetryIn: -time.Second})
	if n, _, err := a.PromoteScheduled(ctx, 10); err != nil || n != 1 {
		t.Fatalf("PromoteScheduled = %d, %v; want 1", n, err)
	}
	recB.waitFor(t, "insert from PromoteScheduled", isInsert(tenant, "prm"))

	// Rescue of an expired lease makes the job retryable: scheduled.
	insert(job("rsc"))
	js, err := a.Lease(ctx, store.LeaseParams{TenantID: tenant, Queue: "rsc", Limit: 1, Duration: time.Microsecond})
	if err != nil || len(js) != 1 {
		t.Fatalf("Lease(rsc) = %d, %v", len(js), err)
	}
	waitDBPast(t, a, js[0].LeaseExpiresAt)
	if n, _, err := a.RescueExpired(ctx, 10, func(*store.Job) time.Duration { return time.Second }); err != nil || n != 1 {
		t.Fatalf("RescueExpired = %d, %v; want 1", n, err)
	}
	rescuedBy, err := a.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The snooze's notification says ten minutes; the rescue's one second.
	recB.waitFor(t, "scheduled from RescueExpired", func(n store.Notification) bool {
		return n.Kind == store.NotifyScheduled && n.At.Before(rescuedBy.Add(time.Minute))
	})

	if err := a.SetQueuePaused(ctx, tenant, "pz", true); err != nil {
		t.Fatalf("SetQueuePaused: %v", err)
	}
	recB.waitFor(t, "queue", func(n store.Notification) bool {
		return n.Kind == store.NotifyQueue && n.TenantID == tenant && n.Queue == "pz"
	})

	// Barrier on a: a notification only its listener delivers. PostgreSQL
	// delivers in commit order, so every copy of a's earlier notifications
	// has reached a's listener by then.
	err = pgx.BeginFunc(ctx, a.Pool(), func(tx pgx.Tx) error {
		_, err := a.InsertTx(ctx, tx, []store.InsertParams{job("barrier")})
		return err
	})
	if err != nil {
		t.Fatalf("InsertTx: %v", err)
	}
	recA.waitFor(t, "barrier", isInsert(tenant, "barrier"))
	got := recA.all()
	// One per write that made jobs of the queue available.
	for q, want := range map[string]int{"ins": 1, "uniq": 1, "rel": 2, "cnl": 2, "prm": 2} {
		if c := count(got, isInsert(tenant, q)); c != want {
			t.Errorf("the writer received %d insert notifications for %s, want %d", c, q, want)
		}
	}
	if c := count(got, isKind(store.NotifyCancel)); c != 1 {
		t.Errorf("the writer received %d cancel notifications, want 1", c)
	}
	if c := count(got, isKind(store.NotifyResync)); c != 0 {
		t.Errorf("the writer received %d resync notifications, want 0", c)
	}
}

// waitDBPast polls the database clock until it is after ts.
func waitDBPast(t *testing.T, s *Store, ts time.Time) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		now, err := s.Now(t.Context())
		if err != nil {
			t.Fatalf("Now: %v", err)
		}
		if now.After(ts) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database clock did not pass %v", ts)
		}
	}
}

// TestConcurrentOpen opens several Stores on one empty database at once, as
// nodes starting together do: the advisory lock serialises their migrations.
func TestConcurrentOpen(t *testing.T) {
	checkLeaks(t)
	url := testdb.PostgresURL(t)
	const nodes = 6
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), Config{URL: url, MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var n, maxV int
	if err := stores[0].Pool().QueryRow(t.Context(), "SELECT count(*), max(version) FROM switchyard.schema_migrations").Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || maxV != ms[len(ms)-1].Version {
		t.Errorf("schema_migrations holds %d rows up to version %d, want %d up to %d", n, maxV, len(ms), ms[len(ms)-1].Version)
	}
}

// TestCallersPool checks that a Store on the caller's pool works, listener
// included, and leaves the pool open on Close.
func TestCallersPool(t *testing.T) {
	checkLeaks(t)
	url := testdb.PostgresURL(t)
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := Open(t.Context(), Config{Pool: pool, NoMigrate: true})
	if err != nil {
		t.Fatalf("Open(NoMigrate): %v", err)
	}
	t.Cleanup(func() { s.Close() })
	// Without migrations there is no schema yet: operations fail.
	if _, err := s.Insert(t.Context(), []store.InsertParams{job("q")}); err == nil {
		t.Errorf("Insert on an unmigrated database succeeded")
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	r := newRecorder()
	s.Listen(r.add)
	// Another Store's write reaches s through its listener.
	other := openStore(t, url)
	if err := other.SetQueuePaused(t.Context(), "default", "q", true); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "queue", isKind(store.NotifyQueue))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("the caller's pool was closed by Close: %v", err)
	}
}
