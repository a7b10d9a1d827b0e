package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var basicsTests = []suiteTest{
	{"Backend", testBackend},
	{"PingAndNow", testPingAndNow},
	{"MigrateIdempotent", testMigrateIdempotent},
	{"CloseIdempotent", testCloseIdempotent},
}

func testBackend(t *testing.T, open opener) {
	e := newEnv(t, open)
	if b := e.s.Backend(); b != "sqlite" && b != "postgres" {
		t.Errorf("Backend() = %q, want sqlite or postgres", b)
	}
}

func testPingAndNow(t *testing.T, open opener) {
	e := newEnv(t, open)
	if err := e.s.Ping(e.ctx()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	a := e.now()
	b := e.now()
	if b.Before(a) {
		t.Errorf("Now went backwards: %v then %v", a, b)
	}
}

func testMigrateIdempotent(t *testing.T, open opener) {
	e := newEnv(t, open)
	j := e.insertJob(params(tenantA, "q", "k"))
	// Open already migrated; running it again must neither fail nor touch data.
	for range 2 {
		if err := e.s.Migrate(e.ctx()); err != nil {
			t.Fatalf("Migrate on a migrated store: %v", err)
		}
	}
	sameJob(t, e.get(tenantA, j.ID), j)
}

func testCloseIdempotent(t *testing.T, open opener) {
	e := newEnv(t, open)
	// The opener's cleanup closes the store once more after these.
	for i := range 2 {
		if err := e.s.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
}

var insertTests = []suiteTest{
	{"Empty", testInsertEmpty},
	{"RoundTrip", testInsertRoundTrip},
	{"Batch", testInsertBatch},
	{"AllOrNothing", testInsertAllOrNothing},
	{"Scheduling", testInsertScheduling},
}

func testInsertEmpty(t *testing.T, open opener) {
	e := newEnv(t, open)
	res, err := e.s.Insert(e.ctx(), nil)
	if err != nil || len(res) != 0 {
		t.Errorf("Insert(nil) = %v, %v; want no results and no error", res, err)
	}
}

func testInsertRoundTrip(t *testing.T, open opener) {
	cases := []struct {
		name     string
		p        store.InsertParams
		wantTags []string
	}{
		{
			name: "every field",
			p: store.InsertParams{
				TenantID:    tenantB,
				Queue:       "mail",
				Kind:        "send_email",
				Args:        []byte(`{"to": "a@example.com", "n": 3, "big": 9007199254740993, "nested": {"list": [1, "two", null, true, 2.5]}, "uni": "héllo ✓ \"q\""}`),
				Priority:    3,
				MaxAttempts: 7,
				Timeout:     1500 * time.Millisecond,
				UniqueKey:   "welcome:42",
				Tags:        []string{"b", "a", "with space", "a,comma", `quo"te`, "ünï", "{brace}"},
			},
			wantTags: []string{"b", "a", "with space", "a,comma", `quo"te`, "ünï", "{brace}"},
		},
		{
			name:     "defaults",
			p:        params(tenantA, "default", "noop"),
			wantTags: []string{},
		},
		{
			name: "array args and empty tags",
			p: store.InsertParams{
				TenantID: tenantA, Queue: "q", Kind: "k", Args: []byte(`[1, {"a": []}]`),
				Priority: 1, MaxAttempts: 1, Tags: []string{},
			},
			wantTags: []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			before := e.now()
			res := e.insert(tc.p)
			after := e.now()
			if res[0].Existing {
				t.Fatalf("Existing = true on an empty store")
			}
			j := res[0].Job
			if j.ID <= 0 {
				t.Errorf("ID = %d, want > 0", j.ID)
			}
			p := tc.p
			for _, c := range []struct {
				name      string
				got, want any
			}{
				{"TenantID", j.TenantID, p.TenantID},
				{"Queue", j.Queue, p.Queue},
				{"Kind", j.Kind, p.Kind},
				{"Priority", j.Priority, p.Priority},
				{"State", j.State, store.StateAvailable},
				{"Attempt", j.Attempt, 0},
				{"MaxAttempts", j.MaxAttempts, p.MaxAttempts},
				{"Timeout", j.Timeout, p.Timeout},
				{"UniqueKey", j.UniqueKey, p.UniqueKey},
				{"LeaseToken", j.LeaseToken, int64(0)},
				{"LeasedBy", j.LeasedBy, ""},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if j.Tags == nil {
				t.Errorf("Tags = nil, want a non-nil slice")
			}
			if !slices.Equal(j.Tags, tc.wantTags) {
				t.Errorf("Tags = %q, want %q (order kept)", j.Tags, tc.wantTags)
			}
			checkJSON(t, "Args", j.Args, p.Args)
			checkJSON(t, "Result", j.Result, nil)
			checkJSON(t, "Progress", j.Progress, nil)
			checkNoErrors(t, j)
			within(t, "RunAt", j.RunAt, before, after)
			within(t, "CreatedAt", j.CreatedAt, before, after)
			checkZeroTime(t, "StartedAt", j.StartedAt)
			checkZeroTime(t, "FinishedAt", j.FinishedAt)
			checkZeroTime(t, "LeaseExpiresAt", j.LeaseExpiresAt)
			// What Insert returned is what was stored.
			sameJob(t, e.get(p.TenantID, j.ID), j)
		})
	}
}

func testInsertBatch(t *testing.T, open opener) {
	e := newEnv(t, open)
	const n = 100
	ps := make([]store.InsertParams, n)
	for i := range ps {
		ps[i] = params(tenantA, fmt.Sprintf("q%d", i%2), fmt.Sprintf("k%d", i))
		ps[i].Args = fmt.Appendf(nil, `{"i": %d}`, i)
	}
	res := e.insert(ps...)
	for i, r := range res {
		if r.Existing {
			t.Errorf("result %d: Existing = true", i)
		}
		// Results come back in input order.
		if r.Job.Kind != ps[i].Kind || r.Job.Queue != ps[i].Queue || !jsonEqual(r.Job.Args, ps[i].Args) {
			t.Errorf("result %d = %s/%s %s, want %s/%s %s", i, r.Job.Queue, r.Job.Kind, r.Job.Args, ps[i].Queue, ps[i].Kind, ps[i].Args)
		}
		// Ids follow input order, so the lease order's id tie-break is FIFO.
		if i > 0 && r.Job.ID <= res[i-1].Job.ID {
			t.Errorf("result %d: ID %d not greater than previous %d", i, r.Job.ID, res[i-1].Job.ID)
		}
	}
	later := e.insertJob(params(tenantA, "q0", "later"))
	if last := res[n-1].Job.ID; later.ID <= last {
		t.Errorf("a later insert got ID %d, want > %d", later.ID, last)
	}
	if got := len(e.allJobs(tenantA)); got != n+1 {
		t.Errorf("List found %d jobs, want %d", got, n+1)
	}
	for _, r := range res[:5] {
		sameJob(t, e.get(tenantA, r.Job.ID), r.Job)
	}
}

func testInsertAllOrNothing(t *testing.T, open opener) {
	for _, prio := range []int{0, 5, 9, -1} {
		t.Run(fmt.Sprintf("priority %d", prio), func(t *testing.T) {
			t.Parallel()
			e := newListeningEnv(t, open)
			good := params(tenantA, "q", "good")
			keyed := params(tenantA, "q", "keyed")
			keyed.UniqueKey = "k"
			scheduled := params(tenantA, "later", "scheduled")
			scheduled.Delay = time.Hour
			bad := params(tenantA, "q", "bad")
			bad.Priority = prio // violates CHECK (priority BETWEEN 1 AND 4)
			res, err := e.s.Insert(e.ctx(), []store.InsertParams{good, keyed, scheduled, bad})
			if err == nil {
				t.Fatalf("Insert with priority %d = %d results, nil error; want an error", prio, len(res))
			}
			if js := e.allJobs(tenantA); len(js) != 0 {
				t.Errorf("after the failed batch List finds jobs %v, want none", ids(js))
			}
			for name, q := range e.queues(tenantA) {
				for state, c := range q.Counts {
					if c != 0 {
						t.Errorf("after the failed batch queue %q counts %d %s jobs", name, c, state)
					}
				}
			}
			// The rolled-back job must not hold its unique key.
			if r := e.insert(keyed)[0]; r.Existing {
				t.Errorf("unique key of the rolled-back batch is still held by job %d", r.Job.ID)
			}
			e.waitInsert(tenantA, "q")
			ns := e.barrier()
			if c := count(ns, isScheduled); c != 0 {
				t.Errorf("the failed batch sent %d %s notifications, want 0", c, store.NotifyScheduled)
			}
			// The retried keyed insert notifies q once; the failed batch must add nothing.
			if c := count(ns, isInsert(tenantA, "q")); c != 1 {
				t.Errorf("got %d %s notifications for q, want 1 (from the successful insert only)", c, store.NotifyInsert)
			}
		})
	}
}

func testInsertScheduling(t *testing.T, open opener) {
	type want struct {
		state  string
		exact  bool          // run_at equals RunAt
		offset time.Duration // else run_at = now + offset
	}
	cases := []struct {
		name   string
		runAt  time.Duration // RunAt = now + runAt, when setRun
		setRun bool
		delay  time.Duration
		want   want
	}{
		{"run_at in the future", time.Hour, true, 0, want{store.StateScheduled, true, 0}},
		{"run_at in the past", -time.Hour, true, 0, want{store.StateAvailable, true, 0}},
		{"delay", 0, false, time.Hour, want{store.StateScheduled, false, time.Hour}},
		{"no delay", 0, false, 0, want{store.StateAvailable, false, 0}},
		{"negative delay", 0, false, -time.Hour, want{store.StateAvailable, false, -time.Hour}},
		{"run_at wins over delay", -time.Hour, true, time.Hour, want{store.StateAvailable, true, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			before := e.now()
			p := params(tenantA, "q", "k")
			p.Delay = tc.delay
			if tc.setRun {
				p.RunAt = before.Add(tc.runAt).Truncate(time.Microsecond)
			}
			j := e.insertJob(p)
			after := e.now()
			if j.State != tc.want.state {
				t.Errorf("State = %s, want %s", j.State, tc.want.state)
			}
			if tc.want.exact {
				if !j.RunAt.Equal(p.RunAt) {
					t.Errorf("RunAt = %v, want %v as given", j.RunAt, p.RunAt)
				}
			} else {
				within(t, "RunAt", j.RunAt, before.Add(tc.want.offset), after.Add(tc.want.offset))
			}
			sameJob(t, e.get(tenantA, j.ID), j)
		})
	}
}

var uniqueTests = []suiteTest{
	{"Existing", testUniqueExisting},
	{"SameCall", testUniqueSameCall},
	{"Concurrent", testUniqueConcurrent},
	{"PerState", testUniquePerState},
	{"Tenants", testUniqueTenants},
}

func testUniqueExisting(t *testing.T, open opener) {
	e := newEnv(t, open)
	p := params(tenantA, "q", "first")
	p.UniqueKey = "order:1"
	first := e.insertJob(p)

	again := params(tenantA, "other-queue", "second")
	again.UniqueKey = "order:1"
	again.Args = []byte(`{"different": true}`)
	r := e.insert(again)[0]
	if !r.Existing {
		t.Fatalf("second insert of the key: Existing = false (job %d), want the live job %d", r.Job.ID, first.ID)
	}
	// The existing job comes back as stored, not as the new parameters.
	sameJob(t, r.Job, first)

	other := params(tenantA, "q", "third")
	other.UniqueKey = "order:2"
	e.insertJob(other)
	if got := len(e.allJobs(tenantA)); got != 2 {
		t.Errorf("List finds %d jobs, want 2", got)
	}
}

func testUniqueSameCall(t *testing.T, open opener) {
	e := newEnv(t, open)
	mk := func(kind, key string) store.InsertParams {
		p := params(tenantA, "q", kind)
		p.UniqueKey = key
		return p
	}
	res := e.insert(mk("a", "K"), mk("b", ""), mk("c", "K"), mk("d", "K2"), mk("e", "K2"), mk("f", "K"))
	wantExisting := []int{-1, -1, 0, -1, 3, 0} // index of the job returned, -1 for new
	for i, r := range res {
		if w := wantExisting[i]; w >= 0 {
			if !r.Existing || r.Job.ID != res[w].Job.ID {
				t.Errorf("result %d: Existing=%v ID=%d, want Existing with job %d (result %d)", i, r.Existing, r.Job.ID, res[w].Job.ID, w)
			}
		} else if r.Existing {
			t.Errorf("result %d: Existing = true, want a new job", i)
		}
	}
	if got := len(e.allJobs(tenantA)); got != 3 {
		t.Errorf("List finds %d jobs, want 3", got)
	}
}

func testUniqueConcurrent(t *testing.T, open opener) {
	e := newEnv(t, open)
	// Several rounds: the first one also fills a driver's connection pool,
	// so later rounds really overlap (an insert that waits on another's
	// uncommitted row must still find that row once it commits).
	const rounds, n = 8, 50
	for round := range rounds {
		key := fmt.Sprint("key-", round)
		type result struct {
			r   store.InsertResult
			err error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				p := params(tenantA, "q", fmt.Sprintf("k%d", i))
				p.UniqueKey = key
				<-start
				res, err := e.s.Insert(e.ctx(), []store.InsertParams{p})
				switch {
				case err != nil:
				case len(res) != 1:
					err = fmt.Errorf("%d results for one job", len(res))
				case res[0].Job == nil:
					err = fmt.Errorf("result without a job (Existing=%v)", res[0].Existing)
				default:
					results[i].r = res[0]
				}
				results[i].err = err
			})
		}
		close(start) // release all at once to maximise contention
		wg.Wait()
		var id int64
		created := 0
		for i, r := range results {
			if r.err != nil {
				t.Errorf("round %d, insert %d: %v", round, i, r.err)
				continue
			}
			if !r.r.Existing {
				created++
			}
			if id == 0 {
				id = r.r.Job.ID
			} else if r.r.Job.ID != id {
				t.Errorf("round %d, insert %d returned job %d, others job %d", round, i, r.r.Job.ID, id)
			}
		}
		if created != 1 {
			t.Errorf("round %d: %d inserts created a job, want exactly 1", round, created)
		}
	}
	if js := e.allJobs(tenantA); len(js) != rounds {
		t.Errorf("List finds %d jobs, want exactly one per key (%d)", len(js), rounds)
	}
}

func testUniquePerState(t *testing.T, open opener) {
	for _, state := range store.AllStates {
		live := slices.Contains(store.LiveStates, state)
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			p := params(tenantA, "q", "k")
			p.UniqueKey = "key"
			j, _ := e.inState(p, state)
			r := e.insert(p)[0]
			if live {
				if !r.Existing || r.Job.ID != j.ID {
					t.Errorf("insert while the key's job is %s: Existing=%v ID=%d, want the live job %d", state, r.Existing, r.Job.ID, j.ID)
				}
				return
			}
			// A finished job no longer holds its key.
			if r.Existing || r.Job.ID == j.ID {
				t.Errorf("insert after the key's job is %s: Existing=%v ID=%d, want a new job", state, r.Existing, r.Job.ID)
			}
			if r.Job.State != store.StateAvailable || r.Job.UniqueKey != "key" {
				t.Errorf("new job: state %s key %q, want available with key %q", r.Job.State, r.Job.UniqueKey, "key")
			}
			// And the new job holds it now.
			if r2 := e.insert(p)[0]; !r2.Existing || r2.Job.ID != r.Job.ID {
				t.Errorf("third insert: Existing=%v ID=%d, want job %d", r2.Existing, r2.Job.ID, r.Job.ID)
			}
		})
	}
}

func testUniqueTenants(t *testing.T, open opener) {
	e := newEnv(t, open)
	pa := params(tenantA, "q", "k")
	pa.UniqueKey = "shared"
	pb := params(tenantB, "q", "k")
	pb.UniqueKey = "shared"
	a := e.insertJob(pa)
	b := e.insertJob(pb) // the same key in another tenant is a different key
	if a.ID == b.ID {
		t.Fatalf("both tenants got job %d", a.ID)
	}
	if r := e.insert(pa)[0]; !r.Existing || r.Job.ID != a.ID || r.Job.TenantID != tenantA {
		t.Errorf("tenant A again: Existing=%v ID=%d tenant=%q, want job %d of %q", r.Existing, r.Job.ID, r.Job.TenantID, a.ID, tenantA)
	}
	if r := e.insert(pb)[0]; !r.Existing || r.Job.ID != b.ID || r.Job.TenantID != tenantB {
		t.Errorf("tenant B again: Existing=%v ID=%d tenant=%q, want job %d of %q", r.Existing, r.Job.ID, r.Job.TenantID, b.ID, tenantB)
	}
}
