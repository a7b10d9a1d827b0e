package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var leaseTests = []suiteTest{
	{"Order", testLeaseOrder},
	{"Limit", testLeaseLimit},
	{"Fields", testLeaseFields},
	{"Tokens", testLeaseTokens},
	{"OnlyAvailable", testLeaseOnlyAvailable},
	{"Paused", testLeasePaused},
	{"Isolation", testLeaseIsolation},
	{"Concurrent", testLeaseConcurrent},
}

func testLeaseOrder(t *testing.T, open opener) {
	e := newEnv(t, open)
	now := e.now().Truncate(time.Microsecond)
	// Inserted in this order, so ids increase down the list. All are due.
	fixture := []struct {
		prio int
		age  time.Duration
	}{
		{2, time.Minute},     // 0
		{1, time.Second},     // 1
		{1, time.Hour},       // 2
		{2, time.Minute},     // 3: same priority and run_at as 0, later id
		{4, 2 * time.Hour},   // 4: oldest, lowest priority
		{3, time.Minute},     // 5
		{2, 2 * time.Minute}, // 6
	}
	wantOrder := []int{2, 1, 6, 0, 3, 5, 4}
	for _, queue := range []string{"one-by-one", "in-bulk"} {
		var ps []store.InsertParams
		for i, f := range fixture {
			p := params(tenantA, queue, fmt.Sprintf("job%d", i))
			p.Priority = f.prio
			p.RunAt = now.Add(-f.age)
			ps = append(ps, p)
		}
		res := e.insert(ps...)
		want := make([]int64, len(wantOrder))
		for i, w := range wantOrder {
			want[i] = res[w].Job.ID
		}
		if queue == "one-by-one" {
			var got []int64
			for range fixture {
				got = append(got, ids(e.lease(tenantA, queue, 1, time.Minute))...)
			}
			if !slices.Equal(got, want) {
				t.Errorf("leasing one at a time gave %v, want %v (priority, then run_at, then id)", got, want)
			}
			continue
		}
		// A bigger limit takes the first jobs in that order, whatever order it returns them in.
		first := sortedIDs(e.lease(tenantA, queue, 3, time.Minute))
		if w := slices.Sorted(slices.Values(want[:3])); !slices.Equal(first, w) {
			t.Errorf("Lease(limit 3) = %v, want %v", first, w)
		}
		rest := sortedIDs(e.lease(tenantA, queue, 100, time.Minute))
		if w := slices.Sorted(slices.Values(want[3:])); !slices.Equal(rest, w) {
			t.Errorf("Lease(limit 100) after that = %v, want %v", rest, w)
		}
	}
}

func testLeaseLimit(t *testing.T, open opener) {
	e := newEnv(t, open)
	for i := range 5 {
		e.insertJob(params(tenantA, "q", fmt.Sprintf("k%d", i)))
	}
	for _, c := range []struct{ limit, want int }{{3, 3}, {3, 2}, {3, 0}} {
		if got := e.lease(tenantA, "q", c.limit, time.Minute); len(got) != c.want {
			t.Errorf("Lease(limit %d) = %d jobs, want %d", c.limit, len(got), c.want)
		}
	}
	if got := e.lease(tenantA, "empty", 10, time.Minute); len(got) != 0 {
		t.Errorf("Lease on an empty queue = %v, want none", ids(got))
	}
}

func testLeaseFields(t *testing.T, open opener) {
	e := newEnv(t, open)
	p := params(tenantA, "q", "k")
	p.Args = []byte(`{"x": 1}`)
	p.Tags = []string{"t"}
	p.Timeout = 2 * time.Second
	inserted := e.insertJob(p)
	const d = 5 * time.Minute
	before := e.now()
	js, err := e.s.Lease(e.ctx(), store.LeaseParams{TenantID: tenantA, Queue: "q", Limit: 10, LeasedBy: "worker-7", Duration: d})
	after := e.now()
	if err != nil || len(js) != 1 {
		t.Fatalf("Lease = %v, %v; want one job", ids(js), err)
	}
	j := js[0]
	if j.ID != inserted.ID || j.State != store.StateRunning || j.Attempt != 1 || j.LeasedBy != "worker-7" {
		t.Errorf("leased job: id %d state %s attempt %d leased_by %q; want id %d running attempt 1 leased_by worker-7",
			j.ID, j.State, j.Attempt, j.LeasedBy, inserted.ID)
	}
	if j.LeaseToken == 0 {
		t.Errorf("LeaseToken = 0, want a random non-zero token")
	}
	within(t, "StartedAt", j.StartedAt, before, after)
	within(t, "LeaseExpiresAt", j.LeaseExpiresAt, before.Add(d), after.Add(d))
	// Leasing changes the lease fields only.
	if !j.RunAt.Equal(inserted.RunAt) || !j.CreatedAt.Equal(inserted.CreatedAt) || j.Timeout != p.Timeout ||
		!jsonEqual(j.Args, p.Args) || !slices.Equal(j.Tags, p.Tags) || j.MaxAttempts != p.MaxAttempts || j.Priority != p.Priority {
		t.Errorf("leased job %+v changed fields other than the lease's; inserted %+v", j, inserted)
	}
	checkZeroTime(t, "FinishedAt", j.FinishedAt)
	sameJob(t, e.get(tenantA, j.ID), j)
}

func testLeaseTokens(t *testing.T, open opener) {
	e := newEnv(t, open)
	ps := make([]store.InsertParams, 100)
	for i := range ps {
		ps[i] = params(tenantA, "q", "k")
	}
	e.insert(ps...)
	js := e.lease(tenantA, "q", 100, time.Minute)
	if len(js) != 100 {
		t.Fatalf("leased %d jobs, want 100", len(js))
	}
	seen := map[int64]int64{}
	for _, j := range js {
		if j.LeaseToken == 0 {
			t.Errorf("job %d: token 0", j.ID)
		}
		if other, dup := seen[j.LeaseToken]; dup {
			t.Errorf("jobs %d and %d share token %d; tokens must be random per lease", other, j.ID, j.LeaseToken)
		}
		seen[j.LeaseToken] = j.ID
		if j.Attempt != 1 {
			t.Errorf("job %d: attempt %d, want 1", j.ID, j.Attempt)
		}
	}

	// Every new lease of the same job carries a new token; attempts count
	// real attempts only (a release gives the attempt back).
	j := js[0]
	tokens := []int64{j.LeaseToken}
	e.completeOK(store.Completion{Lease: leaseOf(j), Outcome: store.OutcomeReleased})
	j, _ = e.leaseJob(j, time.Minute)
	if j.Attempt != 1 {
		t.Errorf("after a release the next lease has attempt %d, want 1", j.Attempt)
	}
	tokens = append(tokens, j.LeaseToken)
	e.completeOK(store.Completion{Lease: leaseOf(j), Outcome: store.OutcomeFailed, Error: "x", RetryIn: -time.Second})
	if n, _, err := e.s.PromoteScheduled(e.ctx(), 100); err != nil || n != 1 {
		t.Fatalf("PromoteScheduled = %d, %v; want 1", n, err)
	}
	j, _ = e.leaseJob(j, time.Minute)
	if j.Attempt != 2 {
		t.Errorf("after a failure the next lease has attempt %d, want 2", j.Attempt)
	}
	tokens = append(tokens, j.LeaseToken)
	if tokens[0] == tokens[1] || tokens[1] == tokens[2] || tokens[0] == tokens[2] {
		t.Errorf("three leases of job %d had tokens %v, want three different tokens", j.ID, tokens)
	}
}

func testLeaseOnlyAvailable(t *testing.T, open opener) {
	e := newEnv(t, open)
	// Jobs in every state but available, in one queue; retryable with a
	// run_at already past, which only PromoteScheduled may make available.
	for _, state := range store.AllStates {
		if state != store.StateAvailable && state != store.StateRetryable {
			e.inState(params(tenantA, "q", state), state)
		}
	}
	j := e.insertJob(params(tenantA, "q", "retryable-due"))
	_, l := e.leaseJob(j, time.Minute)
	e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeFailed, Error: "x", RetryIn: -time.Hour})
	future := params(tenantA, "q", "future")
	future.RunAt = e.now().Add(time.Minute)
	e.insertJob(future)
	if got := e.lease(tenantA, "q", 100, time.Minute); len(got) != 0 {
		t.Errorf("Lease took %v from a queue with no available job", ids(got))
	}
	avail := e.insertJob(params(tenantA, "q", "available"))
	if got := e.lease(tenantA, "q", 100, time.Minute); !slices.Equal(ids(got), jobIDs(avail)) {
		t.Errorf("Lease = %v, want only the available job %d", ids(got), avail.ID)
	}
}

func testLeasePaused(t *testing.T, open opener) {
	e := newEnv(t, open)
	a := e.insert(params(tenantA, "q", "a"), params(tenantA, "q", "b"))
	r := e.insertJob(params(tenantA, "r", "other queue"))
	b := e.insertJob(params(tenantB, "q", "other tenant"))

	e.setPaused(tenantA, "q", true)
	if got := e.lease(tenantA, "q", 10, time.Minute); len(got) != 0 {
		t.Errorf("Lease on a paused queue = %v, want none", ids(got))
	}
	// Pausing is per tenant and per queue.
	if got := e.lease(tenantA, "r", 10, time.Minute); !slices.Equal(ids(got), jobIDs(r)) {
		t.Errorf("Lease on another queue = %v, want %d", ids(got), r.ID)
	}
	if got := e.lease(tenantB, "q", 10, time.Minute); !slices.Equal(ids(got), jobIDs(b)) {
		t.Errorf("Lease on the same queue of another tenant = %v, want %d", ids(got), b.ID)
	}

	e.setPaused(tenantA, "q", false)
	want := []int64{a[0].Job.ID, a[1].Job.ID}
	if got := sortedIDs(e.lease(tenantA, "q", 10, time.Minute)); !slices.Equal(got, want) {
		t.Errorf("Lease after resume = %v, want %v", got, want)
	}
}

func testLeaseIsolation(t *testing.T, open opener) {
	e := newEnv(t, open)
	res := e.insert(
		params(tenantA, "q", "a1"), params(tenantA, "q", "a2"),
		params(tenantA, "r", "a-r"),
		params(tenantB, "q", "b1"),
	)
	for _, c := range []struct {
		tenant, queue string
		want          []int64
	}{
		{tenantA, "q", []int64{res[0].Job.ID, res[1].Job.ID}},
		{tenantA, "r", []int64{res[2].Job.ID}},
		{tenantB, "q", []int64{res[3].Job.ID}},
		{tenantB, "r", nil},
	} {
		got := e.lease(c.tenant, c.queue, 10, time.Minute)
		if !slices.Equal(sortedIDs(got), c.want) {
			t.Errorf("Lease(%s/%s) = %v, want %v", c.tenant, c.queue, sortedIDs(got), c.want)
		}
		for _, j := range got {
			if j.TenantID != c.tenant || j.Queue != c.queue {
				t.Errorf("Lease(%s/%s) returned job %d of %s/%s", c.tenant, c.queue, j.ID, j.TenantID, j.Queue)
			}
		}
	}
}

func testLeaseConcurrent(t *testing.T, open opener) {
	e := newEnv(t, open)
	const jobs, workers = 500, 10
	ps := make([]store.InsertParams, jobs)
	for i := range ps {
		ps[i] = params(tenantA, "q", "k")
		ps[i].Priority = 1 + i%4
	}
	e.insert(ps...)

	var (
		mu     sync.Mutex
		leased = map[int64]int{} // job id -> times leased
		errs   []error
		wg     sync.WaitGroup
	)
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			// Lease until a call finds nothing. With SKIP LOCKED an empty
			// answer can come while other calls still hold rows, which they
			// then lease, so the workers together still take every job.
			for {
				js, err := e.s.Lease(e.ctx(), store.LeaseParams{TenantID: tenantA, Queue: "q", Limit: 7, LeasedBy: fmt.Sprint("w", w), Duration: time.Minute})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, j := range js {
					leased[j.ID]++
				}
				mu.Unlock()
				if err != nil || len(js) == 0 {
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("concurrent Lease: %v", err)
	}
	for id, n := range leased {
		if n != 1 {
			t.Errorf("job %d was leased %d times, want once", id, n)
		}
	}
	if len(leased) != jobs {
		t.Errorf("%d distinct jobs leased, want %d", len(leased), jobs)
	}
	if got := e.lease(tenantA, "q", 10, time.Minute); len(got) != 0 {
		t.Errorf("a final Lease found %v, want nothing left", ids(got))
	}
	if c := e.queues(tenantA)["q"].Counts[store.StateRunning]; c != jobs {
		t.Errorf("queue counts %d running jobs, want %d", c, jobs)
	}
}
