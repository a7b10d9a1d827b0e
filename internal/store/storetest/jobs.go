package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var getTests = []suiteTest{
	{"NotFound", testGetNotFound},
}

func testGetNotFound(t *testing.T, open opener) {
	e := newEnv(t, open)
	j := e.insertJob(params(tenantA, "q", "k"))
	for _, c := range []struct {
		name   string
		tenant string
		id     int64
	}{
		{"unknown id", tenantA, unknownID},
		{"id zero", tenantA, 0},
		{"another tenant's job", tenantB, j.ID},
		{"a tenant that does not exist", "no-such-tenant", j.ID},
	} {
		_, err := e.s.Get(e.ctx(), c.tenant, c.id)
		wantErrIs(t, "Get "+c.name, err, store.ErrNotFound)
	}
}

var listTests = []suiteTest{
	{"Filters", testListFilters},
	{"Paging", testListPaging},
}

func testListFilters(t *testing.T, open opener) {
	e := newEnv(t, open)
	type fix struct {
		queue, kind, state string
		tags               []string
	}
	fixture := []fix{
		{"q1", "k1", store.StateAvailable, []string{"red"}},         // 0
		{"q1", "k2", store.StateScheduled, []string{"red", "blue"}}, // 1
		{"q2", "k1", store.StateRunning, []string{"blue"}},          // 2
		{"q2", "k2", store.StateAvailable, nil},                     // 3
		{"q1", "k1", store.StateAvailable, []string{"a,b"}},         // 4: one tag containing a comma
		{"q1", "k1", store.StateSucceeded, []string{"abc"}},         // 5
		{"q1", "k1", store.StateAvailable, []string{"a_c"}},         // 6: LIKE wildcard in a tag
		{"q2", "k1", store.StateAvailable, []string{"bb"}},          // 7
		{"q1", "k1", store.StateAvailable, []string{"50%"}},         // 8
	}
	id := make([]int64, len(fixture))
	for i, f := range fixture {
		p := params(tenantA, f.queue, f.kind)
		p.Tags = f.tags
		j, _ := e.inState(p, f.state)
		id[i] = j.ID
	}
	// Another tenant's jobs match every filter but must never be listed.
	for _, f := range fixture[:3] {
		p := params(tenantB, f.queue, f.kind)
		p.Tags = f.tags
		e.inState(p, f.state)
	}
	// want lists fixture indexes, newest first; before, when set, is the
	// fixture index whose id is the cursor.
	at := func(i int) *int { return &i }
	cases := []struct {
		name   string
		p      store.ListParams
		before *int
		want   []int
	}{
		{"all", store.ListParams{}, nil, []int{8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{"queue", store.ListParams{Queue: "q1"}, nil, []int{8, 6, 5, 4, 1, 0}},
		{"state available", store.ListParams{State: store.StateAvailable}, nil, []int{8, 7, 6, 4, 3, 0}},
		{"state running", store.ListParams{State: store.StateRunning}, nil, []int{2}},
		{"kind", store.ListParams{Kind: "k2"}, nil, []int{3, 1}},
		{"tag red", store.ListParams{Tag: "red"}, nil, []int{1, 0}},
		{"tag blue", store.ListParams{Tag: "blue"}, nil, []int{2, 1}},
		{"tag is matched whole, not split on commas", store.ListParams{Tag: "a"}, nil, nil},
		{"tag with a comma", store.ListParams{Tag: "a,b"}, nil, []int{4}},
		{"tag is not a substring match", store.ListParams{Tag: "b"}, nil, nil},
		{"tag underscore is literal", store.ListParams{Tag: "a_c"}, nil, []int{6}},
		{"tag percent is literal", store.ListParams{Tag: "%"}, nil, nil},
		{"all filters", store.ListParams{Queue: "q1", State: store.StateAvailable, Kind: "k1", Tag: "red"}, nil, []int{0}},
		{"no match", store.ListParams{Kind: "nope"}, nil, nil},
		{"limit", store.ListParams{Limit: 3}, nil, []int{8, 7, 6}},
		{"before an id", store.ListParams{}, at(4), []int{3, 2, 1, 0}},
		{"before with a filter", store.ListParams{Queue: "q1"}, at(4), []int{1, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := e.with(t)
			p := tc.p
			p.TenantID = tenantA
			if p.Limit == 0 {
				p.Limit = 100
			}
			if tc.before != nil {
				p.Before = id[*tc.before]
			}
			want := make([]int64, len(tc.want))
			for i, w := range tc.want {
				want[i] = id[w]
			}
			got := e.list(p)
			if !slices.Equal(ids(got), want) {
				t.Errorf("List(%+v) = %v, want %v", p, ids(got), want)
			}
			for _, j := range got {
				if j.TenantID != tenantA {
					t.Errorf("List for %q returned job %d of tenant %q", tenantA, j.ID, j.TenantID)
				}
			}
		})
	}
}

func testListPaging(t *testing.T, open opener) {
	e := newEnv(t, open)
	const inQueue, other = 23, 5
	want := map[string][]int64{}
	for i := range inQueue + other {
		q := "paged"
		if i%6 == 5 && len(want["other"]) < other {
			q = "other"
		}
		j := e.insertJob(params(tenantA, q, "k"))
		want[q] = append(want[q], j.ID)
		want[""] = append(want[""], j.ID)
	}
	for _, c := range []struct {
		queue string
		limit int
	}{{"paged", 5}, {"", 4}, {"other", 1}, {"paged", 100}} {
		t.Run(fmt.Sprintf("queue %q limit %d", c.queue, c.limit), func(t *testing.T) {
			e := e.with(t)
			var seen []int64
			before := int64(0)
			for page := 0; ; page++ {
				if page > 100 {
					t.Fatalf("paging does not end: seen %v", seen)
				}
				js := e.list(store.ListParams{TenantID: tenantA, Queue: c.queue, Before: before, Limit: c.limit})
				if len(js) > c.limit {
					t.Fatalf("page of %d jobs, limit %d", len(js), c.limit)
				}
				if len(js) == 0 {
					break
				}
				for _, j := range js {
					if before != 0 && j.ID >= before {
						t.Errorf("page after %d contains job %d", before, j.ID)
					}
				}
				seen = append(seen, ids(js)...)
				before = js[len(js)-1].ID
			}
			w := slices.Clone(want[c.queue])
			slices.Reverse(w)
			// Every job exactly once, newest first across pages.
			if !slices.Equal(seen, w) {
				t.Errorf("pages visited %v, want %v", seen, w)
			}
		})
	}
}

type jobOp struct {
	name  string
	state string // where a live job ends up
	fn    func(ctx context.Context, s store.Store, tenant string, id int64) (*store.Job, error)
}

var cancelOps = []jobOp{
	{"Cancel", store.StateCancelled, func(ctx context.Context, s store.Store, tenant string, id int64) (*store.Job, error) {
		return s.Cancel(ctx, tenant, id)
	}},
	{"Discard", store.StateDead, func(ctx context.Context, s store.Store, tenant string, id int64) (*store.Job, error) {
		return s.Discard(ctx, tenant, id)
	}},
}

var cancelTests = []suiteTest{
	{"Live", testCancelLive},
	{"Final", testCancelFinal},
	{"NotFound", testCancelNotFound},
}

func testCancelLive(t *testing.T, open opener) {
	for _, op := range cancelOps {
		for _, from := range store.LiveStates {
			t.Run(op.name+" "+from, func(t *testing.T) {
				t.Parallel()
				e := newListeningEnv(t, open)
				p := params(tenantA, "q", "k")
				p.UniqueKey = "key"
				j, l := e.inState(p, from)
				before := e.now()
				got, err := op.fn(e.ctx(), e.s, tenantA, j.ID)
				after := e.now()
				if err != nil {
					t.Fatalf("%s of a %s job: %v", op.name, from, err)
				}
				if got == nil || got.ID != j.ID || got.State != op.state {
					t.Fatalf("%s returned %+v, want job %d in state %s", op.name, got, j.ID, op.state)
				}
				within(t, "FinishedAt", got.FinishedAt, before, after)
				stored := e.get(tenantA, j.ID)
				sameJob(t, stored, got)
				// A finished job frees its unique key.
				if r := e.insert(p)[0]; r.Existing {
					t.Errorf("insert after %s: the key is still held by job %d", op.name, r.Job.ID)
				}
				if from != store.StateRunning {
					return
				}
				// The running worker's lease is void: its token is gone,
				// its completion and heartbeat are stale, and it is told.
				if stored.LeaseToken != 0 {
					t.Errorf("LeaseToken = %d after %s, want 0", stored.LeaseToken, op.name)
				}
				wantErrIs(t, "Complete with the voided lease", e.complete(store.Completion{Lease: l, Outcome: store.OutcomeSucceeded})[0], store.ErrStaleLease)
				if stale, err := e.s.Heartbeat(e.ctx(), []store.Lease{l}, time.Hour); err != nil || len(stale) != 1 || stale[0] != l {
					t.Errorf("Heartbeat with the voided lease = %v, %v; want it back as stale", stale, err)
				}
				n := e.waitFor(fmt.Sprintf("%s for job %d", store.NotifyCancel, j.ID), func(n store.Notification) bool {
					return n.Kind == store.NotifyCancel && n.JobID == j.ID
				})
				if n.TenantID != tenantA || n.Queue != "q" {
					t.Errorf("%s notification = %+v, want tenant %q queue %q", store.NotifyCancel, n, tenantA, "q")
				}
				if after := e.get(tenantA, j.ID); after.State != op.state {
					t.Errorf("the stale completion changed the job to %s", after.State)
				}
			})
		}
	}
}

func testCancelFinal(t *testing.T, open opener) {
	for _, op := range cancelOps {
		for _, from := range []string{store.StateSucceeded, store.StateDead, store.StateCancelled} {
			t.Run(op.name+" "+from, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, open)
				j, _ := e.inState(params(tenantA, "q", "k"), from)
				got, err := op.fn(e.ctx(), e.s, tenantA, j.ID)
				wantErrIs(t, fmt.Sprintf("%s of a %s job", op.name, from), err, store.ErrConflict)
				if got == nil || got.ID != j.ID || got.State != from {
					t.Errorf("%s returned %+v with the conflict, want job %d as it is (%s)", op.name, got, j.ID, from)
				}
				sameJob(t, e.get(tenantA, j.ID), j)
			})
		}
	}
}

func testCancelNotFound(t *testing.T, open opener) {
	for _, op := range cancelOps {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			avail := e.insertJob(params(tenantA, "q", "k"))
			running, _ := e.inState(params(tenantA, "r", "k"), store.StateRunning)
			for _, j := range []*store.Job{avail, running} {
				_, err := op.fn(e.ctx(), e.s, tenantB, j.ID)
				wantErrIs(t, fmt.Sprintf("%s of another tenant's %s job", op.name, j.State), err, store.ErrNotFound)
				sameJob(t, e.get(tenantA, j.ID), j)
			}
			_, err := op.fn(e.ctx(), e.s, tenantA, unknownID)
			wantErrIs(t, op.name+" of an unknown id", err, store.ErrNotFound)
		})
	}
}

var retryTests = []suiteTest{
	{"Exhausted", testRetryExhausted},
	{"FromStates", testRetryFromStates},
	{"UniqueKey", testRetryUniqueKey},
	{"NotFound", testRetryNotFound},
}

// testRetryExhausted retries a job that used its only attempt: it gets one
// more, and the queue is told.
func testRetryExhausted(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	p := params(tenantA, "q", "k")
	p.MaxAttempts = 1
	_, l := e.leaseJob(e.insertJob(p), time.Hour)
	e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeFailed, Error: "boom", RetryIn: time.Hour})
	dead := e.get(tenantA, l.JobID)
	if dead.State != store.StateDead {
		t.Fatalf("job is %s, want dead", dead.State)
	}
	e.drain() // so the wait below can only be satisfied by Retry's notification

	before := e.now()
	got, err := e.s.Retry(e.ctx(), tenantA, l.JobID)
	after := e.now()
	if err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if got.State != store.StateAvailable || got.Attempt != 1 || got.MaxAttempts != 2 {
		t.Errorf("retried: %s attempt %d of %d, want available attempt 1 of 2", got.State, got.Attempt, got.MaxAttempts)
	}
	within(t, "RunAt", got.RunAt, before, after)
	checkZeroTime(t, "FinishedAt", got.FinishedAt)
	sameJob(t, e.get(tenantA, l.JobID), got)
	e.waitInsert(tenantA, "q")

	j, _ := e.leaseJob(got, time.Hour)
	if j.Attempt != 2 {
		t.Errorf("lease after retry has attempt %d, want 2", j.Attempt)
	}
}

func testRetryFromStates(t *testing.T, open opener) {
	for _, from := range store.AllStates {
		t.Run(from, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			p := params(tenantA, "q", "k")
			p.MaxAttempts = 3
			if from == store.StateCancelled {
				p.Delay = time.Hour // a cancelled scheduled job comes back due now
			}
			j, _ := e.inState(p, from)
			before := e.now()
			got, err := e.s.Retry(e.ctx(), tenantA, j.ID)
			after := e.now()
			if from != store.StateDead && from != store.StateCancelled {
				wantErrIs(t, "Retry of a "+from+" job", err, store.ErrConflict)
				if got == nil || got.ID != j.ID || got.State != from {
					t.Errorf("Retry returned %+v with the conflict, want job %d as it is (%s)", got, j.ID, from)
				}
				sameJob(t, e.get(tenantA, j.ID), j)
				return
			}
			if err != nil {
				t.Fatalf("Retry of a %s job: %v", from, err)
			}
			// Attempts were not exhausted, so max_attempts stays.
			if got.State != store.StateAvailable || got.Attempt != j.Attempt || got.MaxAttempts != 3 {
				t.Errorf("retried: %s attempt %d of %d, want available attempt %d of 3", got.State, got.Attempt, got.MaxAttempts, j.Attempt)
			}
			within(t, "RunAt", got.RunAt, before, after)
			checkZeroTime(t, "FinishedAt", got.FinishedAt)
			sameJob(t, e.get(tenantA, j.ID), got)
			if js := e.lease(tenantA, "q", 10, time.Hour); !slices.Equal(ids(js), jobIDs(j)) {
				t.Errorf("Lease after Retry = %v, want job %d", ids(js), j.ID)
			}
		})
	}
}

func testRetryUniqueKey(t *testing.T, open opener) {
	t.Run("taken by another live job", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		p := params(tenantA, "q", "k")
		p.UniqueKey = "key"
		old, _ := e.inState(p, store.StateCancelled)
		holder := e.insertJob(p)
		got, err := e.s.Retry(e.ctx(), tenantA, old.ID)
		wantErrIs(t, "Retry while another live job holds the key", err, store.ErrConflict)
		if got != nil && got.ID != old.ID {
			t.Errorf("Retry returned job %d, want %d", got.ID, old.ID)
		}
		sameJob(t, e.get(tenantA, old.ID), old)
		sameJob(t, e.get(tenantA, holder.ID), holder)
	})
	t.Run("free", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		p := params(tenantA, "q", "k")
		p.UniqueKey = "key"
		old, _ := e.inState(p, store.StateDead)
		if _, err := e.s.Retry(e.ctx(), tenantA, old.ID); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		// The retried job is live again and holds its key.
		if r := e.insert(p)[0]; !r.Existing || r.Job.ID != old.ID {
			t.Errorf("insert after Retry: Existing=%v ID=%d, want the retried job %d", r.Existing, r.Job.ID, old.ID)
		}
	})
}

func testRetryNotFound(t *testing.T, open opener) {
	e := newEnv(t, open)
	j, _ := e.inState(params(tenantA, "q", "k"), store.StateDead)
	_, err := e.s.Retry(e.ctx(), tenantB, j.ID)
	wantErrIs(t, "Retry of another tenant's job", err, store.ErrNotFound)
	sameJob(t, e.get(tenantA, j.ID), j)
	_, err = e.s.Retry(e.ctx(), tenantA, unknownID)
	wantErrIs(t, "Retry of an unknown id", err, store.ErrNotFound)
}
