package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var ctx = context.Background()

func TestInsertGetRoundTrip(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	runAt := time.Now().Add(time.Hour).Truncate(time.Microsecond).UTC()
	in := []store.InsertParams{
		{TenantID: "default", Queue: "q", Kind: "k", Args: []byte(`{"a":"b"}`), Priority: 1, MaxAttempts: 5,
			Timeout: 3 * time.Second, UniqueKey: "u1", Tags: []string{"x", "y \"quoted\"", "é"}},
		{TenantID: "default", Queue: "q", Kind: "k", Priority: 4, MaxAttempts: 1, RunAt: runAt},
	}
	jobs := mustInsert(t, s, in...)
	if jobs[0].ID == 0 || jobs[1].ID != jobs[0].ID+1 {
		t.Fatalf("ids %d, %d", jobs[0].ID, jobs[1].ID)
	}
	if jobs[0].State != store.StateAvailable || jobs[1].State != store.StateScheduled {
		t.Fatalf("states %s, %s", jobs[0].State, jobs[1].State)
	}
	for _, want := range jobs {
		got := mustGet(t, s, want.ID)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Get differs from Insert's job:\n got %+v\nwant %+v", got, want)
		}
	}
	got := mustGet(t, s, jobs[1].ID)
	if got.Tags == nil || len(got.Tags) != 0 || string(got.Args) != "{}" || string(got.Errors) != "[]" || !got.RunAt.Equal(runAt) {
		t.Errorf("defaults: tags %#v args %s errors %s run_at %v", got.Tags, got.Args, got.Errors, got.RunAt)
	}
	if _, err := s.Get(ctx, "other", jobs[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get from another tenant: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "default", 9999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get unknown id: %v, want ErrNotFound", err)
	}
}

func TestInsertIDsMatchRowsAcrossChunks(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	// 1000 = 3*256 + 128 + 64 + 40 (exact). With a unique key every 97th,
	// the runs between them are 96 = 64 + 32 (exact).
	for _, keyEvery := range []int{0, 97} {
		ps := make([]store.InsertParams, 1000)
		for i := range ps {
			ps[i] = job("q", fmt.Sprintf("k%d-%d", keyEvery, i))
			if keyEvery > 0 && i%keyEvery == 0 {
				ps[i].UniqueKey = fmt.Sprintf("key%d", i)
			}
		}
		jobs := mustInsert(t, s, ps...)
		for i, j := range jobs {
			if got := mustGet(t, s, j.ID); got.Kind != ps[i].Kind {
				t.Fatalf("job %d: id %d holds kind %s, want %s", i, j.ID, got.Kind, ps[i].Kind)
			}
		}
	}
}

func TestInsertIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	bad := job("q", "bad")
	bad.Priority = 9
	if _, err := s.Insert(ctx, []store.InsertParams{job("q", "ok"), bad}); err == nil {
		t.Fatal("Insert with priority 9 succeeded")
	}
	if jobs, _ := s.List(ctx, store.ListParams{TenantID: "default"}); len(jobs) != 0 {
		t.Fatalf("%d jobs after a failed Insert", len(jobs))
	}
}

func TestInsertUniqueKey(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	a, b := job("q", "k"), job("q", "k")
	a.UniqueKey, b.UniqueKey = "same", "same"
	res, err := s.Insert(ctx, []store.InsertParams{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Existing || !res[1].Existing || res[1].Job.ID != res[0].Job.ID {
		t.Fatalf("same key twice in one call: %+v, %+v", res[0], res[1])
	}

	const n = 50
	var wg sync.WaitGroup
	ids := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			p := job("q", "k")
			p.UniqueKey = "concurrent"
			r, err := s.Insert(ctx, []store.InsertParams{p})
			errs[i] = err
			if err == nil {
				ids[i] = r[0].Job.ID
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("concurrent inserts of one key made jobs %d and %d", ids[0], ids[i])
		}
	}

	// Once the job is final, the key is free again.
	l := mustLease(t, s, "q", 10)
	var cs []store.Completion
	for _, j := range l {
		cs = append(cs, store.Completion{Lease: leaseOf(j), Outcome: store.OutcomeSucceeded})
	}
	if _, err := s.Complete(ctx, cs); err != nil {
		t.Fatal(err)
	}
	res, err = s.Insert(ctx, []store.InsertParams{a})
	if err != nil || res[0].Existing {
		t.Fatalf("insert after the holder finished: %+v, %v", res, err)
	}
}

func TestLeaseOrderPausedAndTenants(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	now := time.Now()
	var ps []store.InsertParams
	for i, pr := range []int{3, 1, 2, 1} {
		p := job("q", fmt.Sprint(i))
		p.Priority = pr
		p.RunAt = now.Add(-time.Duration(i) * time.Second) // later ones are older
		ps = append(ps, p)
	}
	other := job("q", "other tenant")
	other.TenantID = "t2"
	ps = append(ps, other)
	mustInsert(t, s, ps...)

	if err := s.SetQueuePaused(ctx, "default", "q", true); err != nil {
		t.Fatal(err)
	}
	if qs, err := s.QueueSettings(ctx, "default", "q"); err != nil || !qs.Paused {
		t.Fatalf("QueueSettings = %+v, %v", qs, err)
	}
	if got := mustLease(t, s, "q", 10); len(got) != 0 {
		t.Fatalf("leased %d jobs of a paused queue", len(got))
	}
	if err := s.SetQueuePaused(ctx, "default", "q", false); err != nil {
		t.Fatal(err)
	}
	got := mustLease(t, s, "q", 3)
	var kinds []string
	for _, j := range got {
		kinds = append(kinds, j.Kind)
		if j.State != store.StateRunning || j.Attempt != 1 || j.LeaseToken == 0 || j.LeasedBy != "w1" ||
			j.TenantID != "default" || j.StartedAt.IsZero() || !j.LeaseExpiresAt.After(j.StartedAt) {
			t.Errorf("leased job %+v", j)
		}
		if fmt.Sprint(mustGet(t, s, j.ID)) != fmt.Sprint(j) {
			t.Errorf("Lease's job differs from Get's:\n%+v\n%+v", j, mustGet(t, s, j.ID))
		}
	}
	// Priority 1 first (the older of the two first), then priority 2.
	if want := []string{"3", "1", "2"}; !slices.Equal(kinds, want) {
		t.Fatalf("lease order %v, want %v", kinds, want)
	}
	if got := mustLease(t, s, "q", 10); len(got) != 1 || got[0].Kind != "0" {
		t.Fatalf("second lease: %v", got)
	}
}

func TestCompleteOutcomes(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	rec := listen(s)
	var ps []store.InsertParams
	for i := range 7 {
		ps = append(ps, job("q", fmt.Sprint(i)))
	}
	ps[2].MaxAttempts = 1 // fails for good
	mustInsert(t, s, ps...)
	l := mustLease(t, s, "q", 10)
	slices.SortFunc(l, func(a, b *store.Job) int { return int(a.ID - b.ID) })
	rec.take()

	stale := leaseOf(l[6])
	stale.Token++
	res, err := s.Complete(ctx, []store.Completion{
		{Lease: leaseOf(l[0]), Outcome: store.OutcomeSucceeded, Result: []byte(`{"ok":true}`)},
		{Lease: leaseOf(l[1]), Outcome: store.OutcomeFailed, Error: "boom", RetryIn: time.Hour},
		{Lease: leaseOf(l[2]), Outcome: store.OutcomeFailed, Error: "boom"},
		{Lease: leaseOf(l[3]), Outcome: store.OutcomeDead, Error: "fatal"},
		{Lease: leaseOf(l[4]), Outcome: store.OutcomeSnoozed, Delay: time.Hour},
		{Lease: leaseOf(l[5]), Outcome: store.OutcomeReleased},
		{Lease: stale, Outcome: store.OutcomeSucceeded},
		{Lease: leaseOf(l[6]), Outcome: store.OutcomeCancelled},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range res {
		if want := i == 6; errors.Is(e, store.ErrStaleLease) != want || (!want && e != nil) {
			t.Errorf("result %d: %v", i, e)
		}
	}
	type want struct {
		state    string
		attempt  int
		finished bool
		errors   int
	}
	for i, w := range []want{
		{store.StateSucceeded, 1, true, 0},
		{store.StateRetryable, 1, false, 1},
		{store.StateDead, 1, true, 1},
		{store.StateDead, 1, true, 1},
		{store.StateScheduled, 0, false, 0},
		{store.StateAvailable, 0, false, 0},
		{store.StateCancelled, 1, true, 0},
	} {
		j := mustGet(t, s, l[i].ID)
		var errs []struct {
			Attempt int       `json:"attempt"`
			At      time.Time `json:"at"`
			Message string    `json:"message"`
		}
		if err := json.Unmarshal(j.Errors, &errs); err != nil {
			t.Fatalf("job %d errors %s: %v", i, j.Errors, err)
		}
		if j.State != w.state || j.Attempt != w.attempt || j.FinishedAt.IsZero() == w.finished ||
			len(errs) != w.errors || !j.LeaseExpiresAt.IsZero() || j.LeaseToken != 0 {
			t.Errorf("job %d: state %s attempt %d finished %v errors %s lease %v/%d; want %+v",
				i, j.State, j.Attempt, j.FinishedAt, j.Errors, j.LeaseExpiresAt, j.LeaseToken, w)
		}
		if len(errs) == 1 && (errs[0].Attempt != 1 || errs[0].At.IsZero() || errs[0].Message == "") {
			t.Errorf("job %d error %+v", i, errs[0])
		}
	}
	if j := mustGet(t, s, l[0].ID); string(j.Result) != `{"ok":true}` {
		t.Errorf("result %s", j.Result)
	}
	if j := mustGet(t, s, l[1].ID); j.RunAt.Before(time.Now().Add(50 * time.Minute)) {
		t.Errorf("retry at %v, want in an hour", j.RunAt)
	}
	ns := rec.take()
	var inserts, scheduled int
	for _, n := range ns {
		switch n.Kind {
		case store.NotifyInsert:
			inserts++
		case store.NotifyScheduled:
			scheduled++
		}
	}
	if inserts != 1 || scheduled != 1 {
		t.Errorf("notifications %+v: want one insert (released) and one scheduled", ns)
	}
}

func TestHeartbeatAndProgress(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	mustInsert(t, s, job("q", "a"), job("q", "b"))
	l := mustLease(t, s, "q", 2)
	bad := leaseOf(l[1])
	bad.Attempt = 7
	stale, err := s.Heartbeat(ctx, []store.Lease{leaseOf(l[0]), bad}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 1 || stale[0] != bad {
		t.Fatalf("stale %v", stale)
	}
	if j := mustGet(t, s, l[0].ID); j.LeaseExpiresAt.Before(time.Now().Add(50 * time.Minute)) {
		t.Errorf("lease expires %v after heartbeat", j.LeaseExpiresAt)
	}
	if err := s.SetProgress(ctx, leaseOf(l[0]), []byte(`{"pct":50}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetProgress(ctx, bad, []byte(`{}`)); !errors.Is(err, store.ErrStaleLease) {
		t.Fatalf("SetProgress with a stale lease: %v", err)
	}
	if j := mustGet(t, s, l[0].ID); string(j.Progress) != `{"pct":50}` {
		t.Errorf("progress %s", j.Progress)
	}
}

func TestCancelDiscardRetry(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	rec := listen(s)
	u := job("q", "unique")
	u.UniqueKey = "k"
	jobs := mustInsert(t, s, job("q", "running"), job("q", "available"), u)
	running := mustLease(t, s, "q", 1)[0]
	rec.take()

	j, err := s.Cancel(ctx, "default", running.ID)
	if err != nil || j.State != store.StateCancelled || j.FinishedAt.IsZero() || j.LeaseToken != 0 {
		t.Fatalf("Cancel running: %+v, %v", j, err)
	}
	if ns := rec.take(); len(ns) != 1 || ns[0] != (store.Notification{Kind: store.NotifyCancel, TenantID: "default", Queue: "q", JobID: running.ID}) {
		t.Errorf("notifications %+v", ns)
	}
	res, err := s.Complete(ctx, []store.Completion{{Lease: leaseOf(running), Outcome: store.OutcomeSucceeded}})
	if err != nil || !errors.Is(res[0], store.ErrStaleLease) {
		t.Errorf("completing a cancelled job: %v, %v", res, err)
	}
	j, err = s.Cancel(ctx, "default", running.ID)
	if !errors.Is(err, store.ErrConflict) || j == nil || j.State != store.StateCancelled {
		t.Errorf("Cancel cancelled: %+v, %v", j, err)
	}
	if _, err := s.Cancel(ctx, "other", jobs[1].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel another tenant's: %v", err)
	}
	if j, err := s.Discard(ctx, "default", jobs[1].ID); err != nil || j.State != store.StateDead {
		t.Errorf("Discard: %+v, %v", j, err)
	}
	if ns := rec.take(); len(ns) != 0 {
		t.Errorf("discarding an available job notified %+v", ns)
	}

	if j, err := s.Retry(ctx, "default", jobs[2].ID); !errors.Is(err, store.ErrConflict) || j.State != store.StateAvailable {
		t.Errorf("Retry available: %+v, %v", j, err)
	}
	if _, err := s.Retry(ctx, "other", running.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Retry another tenant's: %v", err)
	}
	j, err = s.Retry(ctx, "default", running.ID)
	if err != nil || j.State != store.StateAvailable || !j.FinishedAt.IsZero() || j.MaxAttempts != 3 {
		t.Errorf("Retry cancelled: %+v, %v", j, err)
	}
	if ns := rec.take(); len(ns) != 1 || ns[0].Kind != store.NotifyInsert {
		t.Errorf("notifications %+v", ns)
	}

	// A dead job whose attempts are used up gets one more; one whose unique
	// key is held by a live job cannot be retried.
	if _, err := s.Discard(ctx, "default", jobs[2].ID); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, s, u)
	if _, err := s.Retry(ctx, "default", jobs[2].ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Retry with the key taken: %v", err)
	}
	one := job("one", "x")
	one.MaxAttempts = 1
	mustInsert(t, s, one)
	l := mustLease(t, s, "one", 1)[0]
	if _, err := s.Complete(ctx, []store.Completion{{Lease: leaseOf(l), Outcome: store.OutcomeFailed, Error: "x"}}); err != nil {
		t.Fatal(err)
	}
	j, err = s.Retry(ctx, "default", l.ID)
	if err != nil || j.MaxAttempts != 2 || j.Attempt != 1 {
		t.Errorf("Retry exhausted: %+v, %v", j, err)
	}
}

func TestRescueExpired(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	one := job("q", "last attempt")
	one.MaxAttempts = 1
	mustInsert(t, s, job("q", "retry"), one, job("q", "fresh"))
	expired, err := s.Lease(ctx, store.LeaseParams{TenantID: "default", Queue: "q", Limit: 2, LeasedBy: "w", Duration: -time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fresh := mustLease(t, s, "q", 1)[0]

	var seen []int64
	n, next, err := s.RescueExpired(ctx, 10, func(j *store.Job) time.Duration {
		seen = append(seen, j.ID)
		return time.Hour
	})
	if err != nil || n != 2 {
		t.Fatalf("RescueExpired = %d, %v, %v", n, next, err)
	}
	if next <= 50*time.Second || next > time.Minute {
		t.Errorf("next = %v, want about a minute (the fresh lease)", next)
	}
	if len(seen) != 1 {
		t.Errorf("retryAt called for %v, want only the job with attempts left", seen)
	}
	for _, j := range expired {
		got := mustGet(t, s, j.ID)
		want := store.StateRetryable
		if j.Kind == "last attempt" {
			want = store.StateDead
		}
		if got.State != want || got.LeaseToken != 0 || !bytes.Contains(got.Errors, []byte("lease expired")) {
			t.Errorf("rescued %s: %+v", j.Kind, got)
		}
	}
	if got := mustGet(t, s, fresh.ID); got.State != store.StateRunning {
		t.Errorf("fresh lease rescued: %s", got.State)
	}
	res, _ := s.Complete(ctx, []store.Completion{{Lease: leaseOf(expired[0]), Outcome: store.OutcomeSucceeded}})
	if !errors.Is(res[0], store.ErrStaleLease) {
		t.Errorf("completing a rescued job: %v", res[0])
	}
}

func TestPromoteScheduled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		rec := listen(s)
		if n, next, err := s.PromoteScheduled(ctx, 10); n != 0 || next != -1 || err != nil {
			t.Fatalf("PromoteScheduled on nothing = %d, %v, %v", n, next, err)
		}
		a, b := job("a", "x"), job("b", "x")
		a.Delay, b.Delay = time.Minute, 2*time.Minute
		mustInsert(t, s, a, b)
		ns := rec.take()
		if len(ns) != 1 || ns[0].Kind != store.NotifyScheduled || !ns[0].At.Equal(time.Now().Add(time.Minute)) {
			t.Fatalf("insert notifications %+v", ns)
		}
		time.Sleep(90 * time.Second) // the bubble's clock: a is due, b is not
		n, next, err := s.PromoteScheduled(ctx, 10)
		if n != 1 || next != 30*time.Second || err != nil {
			t.Fatalf("PromoteScheduled = %d, %v, %v", n, next, err)
		}
		if ns := rec.take(); len(ns) != 1 || ns[0] != (store.Notification{Kind: store.NotifyInsert, TenantID: "default", Queue: "a"}) {
			t.Fatalf("promote notifications %+v", ns)
		}
		if got := mustLease(t, s, "a", 10); len(got) != 1 {
			t.Fatalf("leased %d after promotion", len(got))
		}
	})
}

func TestDeleteFinishedAndPurge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		mustInsert(t, s, job("q", "a"), job("q", "b"), job("q", "c"), job("q", "d"))
		l := mustLease(t, s, "q", 3)
		if _, err := s.Complete(ctx, []store.Completion{
			{Lease: leaseOf(l[0]), Outcome: store.OutcomeSucceeded},
			{Lease: leaseOf(l[1]), Outcome: store.OutcomeDead},
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Hour)
		n, err := s.DeleteFinished(ctx, store.RetentionParams{Succeeded: time.Hour, Dead: 3 * time.Hour, Limit: 10})
		if err != nil || n != 1 {
			t.Fatalf("DeleteFinished = %d, %v", n, err)
		}
		if _, err := s.Get(ctx, "default", l[0].ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("succeeded job kept: %v", err)
		}
		n, err = s.PurgeQueue(ctx, "default", "q")
		if err != nil || n != 2 { // the dead one and the available one; not the running one
			t.Fatalf("PurgeQueue = %d, %v", n, err)
		}
		if got := mustGet(t, s, l[2].ID); got.State != store.StateRunning {
			t.Errorf("running job state %s", got.State)
		}
	})
}

func TestQueuesAndList(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	a := job("alpha", "k1")
	a.Tags = []string{"red", "blue"}
	mustInsert(t, s, a, job("alpha", "k2"), job("beta", "k1"))
	other := job("gamma", "k")
	other.TenantID = "t2"
	mustInsert(t, s, other)
	if err := s.SetQueuePaused(ctx, "default", "empty", true); err != nil {
		t.Fatal(err)
	}
	mustLease(t, s, "beta", 1)

	qs, err := s.Queues(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range qs {
		names = append(names, q.Name)
		if len(q.Counts) != len(store.AllStates) {
			t.Errorf("queue %s counts %v", q.Name, q.Counts)
		}
	}
	if !slices.Equal(names, []string{"alpha", "beta", "empty"}) {
		t.Fatalf("queues %v", names)
	}
	if qs[0].Counts[store.StateAvailable] != 2 || qs[1].Counts[store.StateRunning] != 1 || !qs[2].Paused || qs[2].UpdatedAt.IsZero() || qs[0].Paused {
		t.Errorf("queues %+v", qs)
	}

	all, err := s.List(ctx, store.ListParams{TenantID: "default", Limit: 10})
	if err != nil || len(all) != 3 || all[0].ID < all[1].ID {
		t.Fatalf("List = %v, %v", all, err)
	}
	page, err := s.List(ctx, store.ListParams{TenantID: "default", Before: all[0].ID, Limit: 1})
	if err != nil || len(page) != 1 || page[0].ID != all[1].ID {
		t.Fatalf("List page 2 = %v, %v", page, err)
	}
	for _, c := range []struct {
		p    store.ListParams
		want int
	}{
		{store.ListParams{Queue: "alpha"}, 2},
		{store.ListParams{State: store.StateRunning}, 1},
		{store.ListParams{Kind: "k1"}, 2},
		{store.ListParams{Tag: "blue"}, 1},
		{store.ListParams{Tag: "green"}, 0},
		{store.ListParams{Queue: "alpha", Kind: "k1", Tag: "red", State: store.StateAvailable}, 1},
	} {
		c.p.TenantID = "default"
		got, err := s.List(ctx, c.p)
		if err != nil || len(got) != c.want {
			t.Errorf("List %+v = %d jobs, %v; want %d", c.p, len(got), err, c.want)
		}
	}
}

func TestLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		rec := listen(s)
		lead := func(node string) bool {
			ok, err := s.TryLead(ctx, "maint", node, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !lead("a") || lead("b") || !lead("a") {
			t.Fatal("a should lead, b not")
		}
		time.Sleep(2 * time.Minute)
		if !lead("b") || lead("a") {
			t.Fatal("b should take over an expired lead")
		}
		if err := s.Resign(ctx, "maint", "a"); err != nil {
			t.Fatal(err)
		}
		if lead("a") {
			t.Fatal("a's resignation must not end b's lead")
		}
		if err := s.Resign(ctx, "maint", "b"); err != nil {
			t.Fatal(err)
		}
		if !lead("a") {
			t.Fatal("a should lead after b resigned")
		}
		if ns := rec.take(); len(ns) != 2 || ns[0].Kind != store.NotifyLeader {
			t.Errorf("notifications %+v", ns)
		}
	})
}

func TestMigrateIdempotent(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.read.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("schema_migrations rows = %d, %v; want %d", n, err, len(ms))
	}
	var tenant string
	if err := s.read.QueryRow(`SELECT id FROM tenants`).Scan(&tenant); err != nil || tenant != "default" {
		t.Fatalf("tenant %q, %v", tenant, err)
	}

	// A second store on the same file, opened without migrating, sees the
	// schema; and reopening migrates nothing twice.
	s2 := openTest(t, Config{Path: s.w.path, NoMigrate: true})
	mustInsert(t, s2, job("q", "k"))
	s3 := openTest(t, Config{Path: s.w.path})
	if err := s3.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNoMigrateOnEmptyFile(t *testing.T) {
	t.Parallel()
	s := openTest(t, Config{NoMigrate: true})
	if _, err := s.Insert(ctx, []store.InsertParams{job("q", "k")}); err == nil {
		t.Fatal("Insert into an unmigrated file succeeded")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, s, job("q", "k"))
}

func TestOpenValidates(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{{}, {Path: "x.db", Durability: "fast"}, {Path: "a?b"}, {Path: "x.db", ReadConns: -1}} {
		if s, err := Open(ctx, c); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", c)
		}
	}
}

// Long runs of successes go through the multi-row statements; a stale lease
// or a job completed twice within a chunk must still be reported exactly.
func TestCompleteSucceededChunks(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	var ps []store.InsertParams
	for range 300 {
		ps = append(ps, job("q", "k"))
	}
	mustInsert(t, s, ps...)
	l := mustLease(t, s, "q", 300)
	var cs []store.Completion
	for _, j := range l {
		cs = append(cs, store.Completion{Lease: leaseOf(j), Outcome: store.OutcomeSucceeded, Result: []byte(`1`)})
	}
	cs[10].Lease.Token++                                                                    // stale
	cs = slices.Insert(cs, 100, cs[99])                                                     // the same job twice, in one chunk
	cs = append(cs, store.Completion{Lease: cs[20].Lease, Outcome: store.OutcomeSucceeded}) // and in another
	res, err := s.Complete(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range res {
		wantStale := i == 10 || i == 100 || i == len(cs)-1
		if wantStale != errors.Is(e, store.ErrStaleLease) || (!wantStale && e != nil) {
			t.Errorf("completion %d: %v", i, e)
		}
	}
	for i, j := range l {
		got := mustGet(t, s, j.ID)
		want := store.StateSucceeded
		if i == 10 {
			want = store.StateRunning
		}
		if got.State != want || (want == store.StateSucceeded && (string(got.Result) != "1" || got.FinishedAt.IsZero())) {
			t.Errorf("job %d: %s result %s", i, got.State, got.Result)
		}
	}
}
