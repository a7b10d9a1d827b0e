package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var rescueTests = []suiteTest{
	{"Expired", testRescueExpired},
	{"NothingExpired", testRescueNothingExpired},
	{"Limit", testRescueLimit},
}

// expireLease leases j for a millisecond and waits on the database clock
// until the lease has expired.
func (e *env) expireLease(j *store.Job) (*store.Job, store.Lease) {
	e.t.Helper()
	j, l := e.leaseJob(j, time.Millisecond)
	e.waitPast(j.LeaseExpiresAt)
	return j, l
}

func testRescueExpired(t *testing.T, open opener) {
	e := newEnv(t, open)
	retry := params(tenantA, "q", "has attempts left")
	retry.MaxAttempts = 3
	last := params(tenantB, "r", "on its last attempt")
	last.MaxAttempts = 1
	r, lr := e.expireLease(e.insertJob(retry))
	d, ld := e.expireLease(e.insertJob(last))
	alive, la := e.leaseJob(e.insertJob(params(tenantA, "long", "still leased")), time.Hour)

	var mu sync.Mutex
	seen := map[int64]*store.Job{}
	before := e.now()
	n, next, err := e.s.RescueExpired(e.ctx(), 100, func(j *store.Job) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		seen[j.ID] = j
		return 30 * time.Minute
	})
	after := e.now()
	if err != nil {
		t.Fatalf("RescueExpired: %v", err)
	}
	if n != 2 {
		t.Errorf("RescueExpired moved %d jobs, want 2", n)
	}
	// next is the time from the rescue's now to the one lease still pending.
	durationWithin(t, "next", next, alive.LeaseExpiresAt.Sub(after), alive.LeaseExpiresAt.Sub(before))

	if sj := seen[r.ID]; sj == nil || sj.Attempt != 1 || sj.Kind != retry.Kind {
		t.Errorf("retryAt was called with %+v for job %d, want the job (attempt 1, kind %q)", sj, r.ID, retry.Kind)
	}
	if _, ok := seen[alive.ID]; ok {
		t.Errorf("retryAt was called for the unexpired job %d", alive.ID)
	}

	got := e.get(tenantA, r.ID)
	if got.State != store.StateRetryable || got.Attempt != 1 {
		t.Errorf("rescued job with attempts left: %s attempt %d, want retryable attempt 1", got.State, got.Attempt)
	}
	within(t, "rescued RunAt", got.RunAt, before.Add(30*time.Minute), after.Add(30*time.Minute))
	checkZeroTime(t, "rescued FinishedAt", got.FinishedAt)
	checkLastError(t, got, 1, "lease expired", before, after)
	if got.LeaseToken != 0 {
		t.Errorf("rescued job keeps token %d, want it voided (0)", got.LeaseToken)
	}

	got = e.get(tenantB, d.ID)
	if got.State != store.StateDead {
		t.Errorf("rescued job out of attempts: %s, want dead", got.State)
	}
	within(t, "dead FinishedAt", got.FinishedAt, before, after)
	checkLastError(t, got, 1, "lease expired", before, after)

	// The workers that lost their leases are fenced off.
	for i, err := range e.complete(
		store.Completion{Lease: lr, Outcome: store.OutcomeSucceeded},
		store.Completion{Lease: ld, Outcome: store.OutcomeSucceeded},
		store.Completion{Lease: la, Outcome: store.OutcomeSucceeded},
	) {
		if i < 2 {
			wantErrIs(t, fmt.Sprintf("Complete with rescued lease %d", i), err, store.ErrStaleLease)
		} else if err != nil {
			t.Errorf("Complete of the unexpired lease: %v", err)
		}
	}
	if n, next, err := e.s.RescueExpired(e.ctx(), 100, func(*store.Job) time.Duration { return time.Minute }); err != nil || n != 0 || next != 0 {
		t.Errorf("RescueExpired with nothing running = %d, %v, %v; want 0, 0, nil", n, next, err)
	}
}

func testRescueNothingExpired(t *testing.T, open opener) {
	e := newEnv(t, open)
	never := func(j *store.Job) time.Duration {
		t.Errorf("retryAt called for job %d, which has not expired", j.ID)
		return time.Minute
	}
	if n, next, err := e.s.RescueExpired(e.ctx(), 100, never); err != nil || n != 0 || next != 0 {
		t.Errorf("RescueExpired on an empty store = %d, %v, %v; want 0, 0, nil", n, next, err)
	}
	j, _ := e.leaseJob(e.insertJob(params(tenantA, "q", "k")), time.Hour)
	before := e.now()
	n, next, err := e.s.RescueExpired(e.ctx(), 100, never)
	after := e.now()
	if err != nil || n != 0 {
		t.Fatalf("RescueExpired = %d, %v; want 0, nil", n, err)
	}
	durationWithin(t, "next", next, j.LeaseExpiresAt.Sub(after), j.LeaseExpiresAt.Sub(before))
	sameJob(t, e.get(tenantA, j.ID), j)
}

func testRescueLimit(t *testing.T, open opener) {
	e := newEnv(t, open)
	ps := make([]store.InsertParams, 3)
	for i := range ps {
		ps[i] = params(tenantA, "q", "k")
	}
	e.insert(ps...)
	js := e.lease(tenantA, "q", 3, time.Millisecond)
	if len(js) != 3 {
		t.Fatalf("leased %d, want 3", len(js))
	}
	for _, j := range js {
		e.waitPast(j.LeaseExpiresAt)
	}
	retryAt := func(*store.Job) time.Duration { return time.Hour }
	for _, want := range []int{2, 1, 0} {
		n, _, err := e.s.RescueExpired(e.ctx(), 2, retryAt)
		if err != nil || n != want {
			t.Errorf("RescueExpired(limit 2) = %d, %v; want %d", n, err, want)
		}
	}
	if c := e.queues(tenantA)["q"].Counts[store.StateRetryable]; c != 3 {
		t.Errorf("%d retryable jobs, want 3", c)
	}
}

var promoteTests = []suiteTest{
	{"DueAndFuture", testPromoteDueAndFuture},
	{"Nothing", testPromoteNothing},
	{"Limit", testPromoteLimit},
}

func testPromoteDueAndFuture(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	// A scheduled job that falls due a millisecond after its snooze.
	_, l := e.leaseJob(e.insertJob(params(tenantA, "qa", "snoozed")), time.Hour)
	e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeSnoozed, Delay: time.Millisecond})
	snoozed := e.get(tenantA, l.JobID)
	if snoozed.State != store.StateScheduled {
		t.Fatalf("snoozed job is %s, want scheduled", snoozed.State)
	}
	// A retryable job already due, in another tenant.
	_, l = e.leaseJob(e.insertJob(params(tenantB, "qb", "retry due")), time.Hour)
	e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeFailed, Error: "x", RetryIn: -time.Second})
	retryDue := e.get(tenantB, l.JobID)
	// Not due yet: a scheduled job in an hour and a retry in half an hour.
	future := params(tenantA, "qc", "later")
	future.Delay = time.Hour
	later := e.insertJob(future)
	_, l = e.leaseJob(e.insertJob(params(tenantA, "qd", "retry later")), time.Hour)
	e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeFailed, Error: "x", RetryIn: 30 * time.Minute})
	retryLater := e.get(tenantA, l.JobID)

	e.waitPast(snoozed.RunAt)
	e.drain()
	before := e.now()
	n, next, err := e.s.PromoteScheduled(e.ctx(), 100)
	after := e.now()
	if err != nil {
		t.Fatalf("PromoteScheduled: %v", err)
	}
	if n != 2 {
		t.Errorf("PromoteScheduled moved %d jobs, want 2", n)
	}
	durationWithin(t, "next", next, retryLater.RunAt.Sub(after), retryLater.RunAt.Sub(before))
	for _, c := range []struct {
		j     *store.Job
		state string
	}{
		{snoozed, store.StateAvailable},
		{retryDue, store.StateAvailable},
		{later, store.StateScheduled},
		{retryLater, store.StateRetryable},
	} {
		if got := e.get(c.j.TenantID, c.j.ID); got.State != c.state {
			t.Errorf("job %q is %s, want %s", c.j.Kind, got.State, c.state)
		}
	}
	e.waitInsert(tenantA, "qa")
	e.waitInsert(tenantB, "qb")
	// Promoted jobs are leasable; the snooze gave its attempt back.
	if j, _ := e.leaseJob(snoozed, time.Hour); j.Attempt != 1 {
		t.Errorf("snoozed job leased with attempt %d, want 1", j.Attempt)
	}
	if j, _ := e.leaseJob(retryDue, time.Hour); j.Attempt != 2 {
		t.Errorf("retried job leased with attempt %d, want 2", j.Attempt)
	}

	before = e.now()
	n, next, err = e.s.PromoteScheduled(e.ctx(), 100)
	after = e.now()
	if err != nil || n != 0 {
		t.Errorf("second PromoteScheduled = %d, %v; want 0", n, err)
	}
	durationWithin(t, "next", next, retryLater.RunAt.Sub(after), retryLater.RunAt.Sub(before))
}

func testPromoteNothing(t *testing.T, open opener) {
	e := newEnv(t, open)
	if n, next, err := e.s.PromoteScheduled(e.ctx(), 100); err != nil || n != 0 || next != -1 {
		t.Errorf("PromoteScheduled on an empty store = %d, %v, %v; want 0, -1, nil", n, next, err)
	}
	// Jobs that are not pending do not count as "next".
	e.insertJob(params(tenantA, "q", "available"))
	e.inState(params(tenantA, "q", "running"), store.StateRunning)
	e.inState(params(tenantA, "q", "done"), store.StateSucceeded)
	if n, next, err := e.s.PromoteScheduled(e.ctx(), 100); err != nil || n != 0 || next != -1 {
		t.Errorf("PromoteScheduled with nothing pending = %d, %v, %v; want 0, -1, nil", n, next, err)
	}
}

func testPromoteLimit(t *testing.T, open opener) {
	e := newEnv(t, open)
	ps := make([]store.InsertParams, 3)
	for i := range ps {
		ps[i] = params(tenantA, "q", "k")
	}
	e.insert(ps...)
	for _, j := range e.lease(tenantA, "q", 3, time.Hour) {
		e.completeOK(store.Completion{Lease: leaseOf(j), Outcome: store.OutcomeFailed, Error: "x", RetryIn: -time.Second})
	}
	for _, want := range []int{2, 1, 0} {
		if n, _, err := e.s.PromoteScheduled(e.ctx(), 2); err != nil || n != want {
			t.Errorf("PromoteScheduled(limit 2) = %d, %v; want %d", n, err, want)
		}
	}
	if got := e.lease(tenantA, "q", 10, time.Hour); len(got) != 3 {
		t.Errorf("leased %d promoted jobs, want 3", len(got))
	}
}

var retentionTests = []suiteTest{
	{"DeleteFinished", testDeleteFinished},
	{"DeleteFinishedLimit", testDeleteFinishedLimit},
	{"PurgeQueue", testPurgeQueue},
}

// finishedFixture makes two jobs in each final state and one in each live
// state, waits until every finished_at is more than age in the past, and
// returns the jobs by state.
func (e *env) finishedFixture(age time.Duration) map[string][]*store.Job {
	e.t.Helper()
	byState := map[string][]*store.Job{}
	var latest time.Time
	for _, state := range store.AllStates {
		n := 1
		if !slices.Contains(store.LiveStates, state) {
			n = 2
		}
		for i := range n {
			j, _ := e.inState(params(tenantA, "q", fmt.Sprintf("%s-%d", state, i)), state)
			byState[state] = append(byState[state], j)
			if j.FinishedAt.After(latest) {
				latest = j.FinishedAt
			}
		}
	}
	e.waitPast(latest.Add(age))
	return byState
}

func (e *env) checkRemaining(what string, byState map[string][]*store.Job, deleted map[string]bool) {
	e.t.Helper()
	for state, js := range byState {
		for _, j := range js {
			_, err := e.s.Get(e.ctx(), j.TenantID, j.ID)
			if deleted[state] {
				wantErrIs(e.t, fmt.Sprintf("%s: Get of deleted %s job %d", what, state, j.ID), err, store.ErrNotFound)
			} else if err != nil {
				e.t.Errorf("%s: %s job %d should remain: %v", what, state, j.ID, err)
			}
		}
	}
}

func testDeleteFinished(t *testing.T, open opener) {
	e := newEnv(t, open)
	byState := e.finishedFixture(time.Millisecond)
	// Succeeded: old enough. Cancelled: age 0 keeps them. Dead: too young.
	n, err := e.s.DeleteFinished(e.ctx(), store.RetentionParams{Succeeded: time.Millisecond, Dead: time.Hour, Limit: 100})
	if err != nil || n != 2 {
		t.Errorf("DeleteFinished = %d, %v; want the 2 succeeded jobs", n, err)
	}
	e.checkRemaining("first pass", byState, map[string]bool{store.StateSucceeded: true})

	n, err = e.s.DeleteFinished(e.ctx(), store.RetentionParams{Succeeded: time.Millisecond, Cancelled: time.Millisecond, Dead: time.Millisecond, Limit: 100})
	if err != nil || n != 4 {
		t.Errorf("second DeleteFinished = %d, %v; want the 2 cancelled and 2 dead jobs", n, err)
	}
	e.checkRemaining("second pass", byState, map[string]bool{store.StateSucceeded: true, store.StateCancelled: true, store.StateDead: true})

	if n, err := e.s.DeleteFinished(e.ctx(), store.RetentionParams{}); err != nil || n != 0 {
		t.Errorf("DeleteFinished with every age 0 = %d, %v; want 0", n, err)
	}
}

func testDeleteFinishedLimit(t *testing.T, open opener) {
	e := newEnv(t, open)
	var latest time.Time
	for i := range 5 {
		j, _ := e.inState(params(tenantA, "q", fmt.Sprint("k", i)), store.StateSucceeded)
		latest = j.FinishedAt
	}
	e.waitPast(latest.Add(time.Millisecond))
	for _, want := range []int{2, 2, 1, 0} {
		if n, err := e.s.DeleteFinished(e.ctx(), store.RetentionParams{Succeeded: time.Millisecond, Limit: 2}); err != nil || n != want {
			t.Errorf("DeleteFinished(limit 2) = %d, %v; want %d", n, err, want)
		}
	}
}

func testPurgeQueue(t *testing.T, open opener) {
	e := newEnv(t, open)
	byState := map[string]*store.Job{}
	var running store.Lease
	for _, state := range store.AllStates {
		j, l := e.inState(params(tenantA, "q", state), state)
		byState[state] = j
		if state == store.StateRunning {
			running = l
		}
	}
	otherQueue := e.insertJob(params(tenantA, "r", "k"))
	otherTenant := e.insertJob(params(tenantB, "q", "k"))

	n, err := e.s.PurgeQueue(e.ctx(), tenantA, "q")
	if err != nil || n != len(store.AllStates)-1 {
		t.Errorf("PurgeQueue = %d, %v; want %d (every job but the running one)", n, err, len(store.AllStates)-1)
	}
	for state, j := range byState {
		_, err := e.s.Get(e.ctx(), tenantA, j.ID)
		if state == store.StateRunning {
			if err != nil {
				t.Errorf("running job was purged: %v", err)
			}
		} else {
			wantErrIs(t, "Get of purged "+state+" job", err, store.ErrNotFound)
		}
	}
	sameJob(t, e.get(tenantA, otherQueue.ID), otherQueue)
	sameJob(t, e.get(tenantB, otherTenant.ID), otherTenant)
	// The running job's worker can still finish it.
	e.completeOK(store.Completion{Lease: running, Outcome: store.OutcomeSucceeded})
	if n, err := e.s.PurgeQueue(e.ctx(), tenantA, "q"); err != nil || n != 1 {
		t.Errorf("second PurgeQueue = %d, %v; want the now finished job", n, err)
	}
}

var leaderTests = []suiteTest{
	{"OneLeader", testLeaderOne},
	{"Expiry", testLeaderExpiry},
	{"Renew", testLeaderRenew},
	{"Names", testLeaderNames},
	{"Concurrent", testLeaderConcurrent},
}

func (e *env) tryLead(name, node string, ttl time.Duration) bool {
	e.t.Helper()
	ok, err := e.s.TryLead(e.ctx(), name, node, ttl)
	if err != nil {
		e.t.Fatalf("TryLead(%q, %q): %v", name, node, err)
	}
	return ok
}

func (e *env) resign(name, node string) {
	e.t.Helper()
	if err := e.s.Resign(e.ctx(), name, node); err != nil {
		e.t.Fatalf("Resign(%q, %q): %v", name, node, err)
	}
}

func testLeaderOne(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	steps := []struct {
		node string
		want bool
	}{
		{"n1", true},
		{"n2", false},
		{"n1", true}, // renewing
		{"n2", false},
	}
	for i, s := range steps {
		if got := e.tryLead("maint", s.node, time.Hour); got != s.want {
			t.Errorf("step %d: TryLead(%s) = %v, want %v", i, s.node, got, s.want)
		}
	}
	// Resigning what one does not hold changes nothing.
	e.resign("maint", "n2")
	if e.tryLead("maint", "n2", time.Hour) {
		t.Errorf("n2 took the lead after its own no-op Resign")
	}
	e.resign("maint", "n1")
	e.waitFor(store.NotifyLeader, func(n store.Notification) bool { return n.Kind == store.NotifyLeader })
	if !e.tryLead("maint", "n2", time.Hour) {
		t.Errorf("n2 could not lead after n1 resigned")
	}
	if e.tryLead("maint", "n1", time.Hour) {
		t.Errorf("n1 leads again while n2 holds the lead")
	}
}

func testLeaderExpiry(t *testing.T, open opener) {
	e := newEnv(t, open)
	if !e.tryLead("maint", "n1", time.Millisecond) {
		t.Fatalf("n1 could not take a free lead")
	}
	// The lease ran from the database's now during TryLead, which is no later
	// than this reading.
	e.waitPast(e.now().Add(time.Millisecond))
	if !e.tryLead("maint", "n2", time.Hour) {
		t.Errorf("n2 could not take an expired lead")
	}
	if e.tryLead("maint", "n1", time.Hour) {
		t.Errorf("n1 took the lead back from n2")
	}
}

func testLeaderRenew(t *testing.T, open opener) {
	e := newEnv(t, open)
	if !e.tryLead("maint", "n1", time.Millisecond) {
		t.Fatalf("n1 could not take a free lead")
	}
	// Renewing is allowed even if the short lease lapsed meanwhile: it is ours.
	if !e.tryLead("maint", "n1", time.Hour) {
		t.Fatalf("n1 could not renew its lead")
	}
	e.waitPast(e.now().Add(time.Millisecond))
	if e.tryLead("maint", "n2", time.Hour) {
		t.Errorf("n2 took a lead that n1 renewed for an hour")
	}
}

func testLeaderNames(t *testing.T, open opener) {
	e := newEnv(t, open)
	if !e.tryLead("a", "n1", time.Hour) || !e.tryLead("b", "n2", time.Hour) {
		t.Fatalf("two nodes could not lead two different names")
	}
	if e.tryLead("a", "n2", time.Hour) || e.tryLead("b", "n1", time.Hour) {
		t.Errorf("a node took the other's name")
	}
}

func testLeaderConcurrent(t *testing.T, open opener) {
	e := newEnv(t, open)
	const nodes = 10
	won := make([]bool, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			<-start
			won[i], errs[i] = e.s.TryLead(e.ctx(), "maint", fmt.Sprint("node", i), time.Hour)
		})
	}
	close(start)
	wg.Wait()
	leaders := 0
	for i := range nodes {
		if errs[i] != nil {
			t.Errorf("node%d: TryLead: %v", i, errs[i])
		}
		if won[i] {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d nodes lead at once, want exactly 1", leaders)
	}
}
