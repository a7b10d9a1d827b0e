package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var notifyTests = []suiteTest{
	{"InsertOncePerQueue", testNotifyInsert},
	{"Complete", testNotifyComplete},
}

func isScheduled(n store.Notification) bool { return n.Kind == store.NotifyScheduled }

// checkAt checks a notification's At against a stored run_at. Notification
// payloads may carry less precision than the column, so a millisecond is
// allowed.
func checkAt(t *testing.T, n store.Notification, want time.Time) {
	t.Helper()
	if d := n.At.Sub(want); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("%s notification At = %v, want the run_at %v", n.Kind, n.At, want)
	}
}

func testNotifyInsert(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	var ps []store.InsertParams
	add := func(n int, tenant, queue string, delay time.Duration) {
		for i := range n {
			p := params(tenant, queue, fmt.Sprint("k", i))
			p.Delay = delay
			ps = append(ps, p)
		}
	}
	add(5, tenantA, "qa", 0)
	add(3, tenantA, "qb", 0)
	add(2, tenantB, "qa", 0)
	add(1, tenantA, "later", 2*time.Hour)
	add(1, tenantA, "later", time.Hour)
	add(1, tenantB, "later", 3*time.Hour)
	res := e.insert(ps...)
	earliest := res[len(res)-2].Job.RunAt

	for _, tq := range [][2]string{{tenantA, "qa"}, {tenantA, "qb"}, {tenantB, "qa"}} {
		e.waitInsert(tq[0], tq[1])
	}
	checkAt(t, e.waitFor(store.NotifyScheduled, isScheduled), earliest)

	ns := e.barrier()
	// One wake-up per queue that got available jobs, not one per job.
	for _, tq := range [][2]string{{tenantA, "qa"}, {tenantA, "qb"}, {tenantB, "qa"}} {
		if c := count(ns, isInsert(tq[0], tq[1])); c != 1 {
			t.Errorf("%d %s notifications for %s/%s, want 1", c, store.NotifyInsert, tq[0], tq[1])
		}
	}
	for _, tenant := range []string{tenantA, tenantB} {
		if c := count(ns, isInsert(tenant, "later")); c != 0 {
			t.Errorf("%d %s notifications for %s/later, which got only scheduled jobs", c, store.NotifyInsert, tenant)
		}
	}
	if c := count(ns, isScheduled); c != 1 {
		t.Errorf("%d %s notifications for one insert, want 1 (At = the earliest run_at)", c, store.NotifyScheduled)
	}

	// A purely scheduled insert wakes the scheduler only.
	later := params(tenantA, "later", "again")
	later.Delay = 30 * time.Minute
	j := e.insertJob(later)
	checkAt(t, e.waitFor("second "+store.NotifyScheduled, func(n store.Notification) bool {
		return isScheduled(n) && n.At.Before(earliest.Add(-15*time.Minute))
	}), j.RunAt)
}

func testNotifyComplete(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	res := e.insert(params(tenantA, "rel", "k"), params(tenantA, "snz", "k"), params(tenantA, "fail", "k"), params(tenantA, "lost", "k"))
	rel := e.lease(tenantA, "rel", 1, time.Hour)
	snz := e.lease(tenantA, "snz", 1, time.Hour)
	fail := e.lease(tenantA, "fail", 1, time.Hour)
	if len(rel) != 1 || len(snz) != 1 || len(fail) != 1 {
		t.Fatalf("leased %d, %d and %d, want one each", len(rel), len(snz), len(fail))
	}
	e.drain()
	for i, err := range e.complete(
		store.Completion{Lease: leaseOf(rel[0]), Outcome: store.OutcomeReleased},
		store.Completion{Lease: leaseOf(snz[0]), Outcome: store.OutcomeSnoozed, Delay: time.Hour},
	) {
		if err != nil {
			t.Fatalf("slot %d: %v", i, err)
		}
	}
	// The released job is available again, so its queue is woken; the
	// snoozed one is scheduled, so the scheduler is told when.
	e.waitInsert(tenantA, "rel")
	checkAt(t, e.waitFor(store.NotifyScheduled, isScheduled), e.get(tenantA, snz[0].ID).RunAt)

	// A retry waits like a scheduled job, and nothing but this notification
	// (the design has no polling) tells the promoter when it is due.
	e.drain()
	e.completeOK(store.Completion{Lease: leaseOf(fail[0]), Outcome: store.OutcomeFailed, Error: "x", RetryIn: 30 * time.Minute})
	checkAt(t, e.waitFor(store.NotifyScheduled+" after a failure", isScheduled), e.get(tenantA, fail[0].ID).RunAt)

	// So does a retry after a rescue.
	lost, _ := e.expireLease(res[3].Job)
	e.drain()
	if n, _, err := e.s.RescueExpired(e.ctx(), 10, func(*store.Job) time.Duration { return 20 * time.Minute }); err != nil || n != 1 {
		t.Fatalf("RescueExpired = %d, %v; want 1", n, err)
	}
	checkAt(t, e.waitFor(store.NotifyScheduled+" after a rescue", isScheduled), e.get(tenantA, lost.ID).RunAt)
}
