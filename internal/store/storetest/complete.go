package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var completeTests = []suiteTest{
	{"Outcomes", testCompleteOutcomes},
	{"ErrorsAccumulate", testCompleteErrorsAccumulate},
	{"Stale", testCompleteStale},
	{"Twice", testCompleteTwice},
	{"Batch", testCompleteBatch},
	{"Empty", testCompleteEmpty},
}

func testCompleteOutcomes(t *testing.T, open opener) {
	cases := []struct {
		name        string
		maxAttempts int
		c           store.Completion
		state       string
		attempt     int  // after completion
		finished    bool // finished_at set
		runAtCheck  bool // run_at = completion's now + runAtOffset
		runAtOffset time.Duration
		errMsg      string // "" means no error may be recorded
		result      []byte
	}{
		{name: "succeeded with result", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeSucceeded, Result: []byte(`{"ok": true, "n": [1, 2]}`)},
			state: store.StateSucceeded, attempt: 1, finished: true, result: []byte(`{"ok": true, "n": [1, 2]}`)},
		{name: "succeeded without result", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeSucceeded},
			state: store.StateSucceeded, attempt: 1, finished: true},
		{name: "failed with attempts left", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeFailed, Error: "boom", RetryIn: time.Hour},
			state: store.StateRetryable, attempt: 1, runAtCheck: true, runAtOffset: time.Hour, errMsg: "boom"},
		{name: "failed with a retry time in the past", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeFailed, Error: "boom", RetryIn: -time.Minute},
			state: store.StateRetryable, attempt: 1, runAtCheck: true, runAtOffset: -time.Minute, errMsg: "boom"},
		{name: "failed on the last attempt", maxAttempts: 1,
			c:     store.Completion{Outcome: store.OutcomeFailed, Error: "boom", RetryIn: time.Hour},
			state: store.StateDead, attempt: 1, finished: true, errMsg: "boom"},
		{name: "dead with attempts left", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeDead, Error: "fatal"},
			state: store.StateDead, attempt: 1, finished: true, errMsg: "fatal"},
		{name: "snoozed", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeSnoozed, Delay: time.Hour},
			state: store.StateScheduled, attempt: 0, runAtCheck: true, runAtOffset: time.Hour},
		{name: "snoozed on the last attempt", maxAttempts: 1,
			c:     store.Completion{Outcome: store.OutcomeSnoozed, Delay: time.Hour},
			state: store.StateScheduled, attempt: 0, runAtCheck: true, runAtOffset: time.Hour},
		{name: "snoozed without delay", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeSnoozed},
			state: store.StateAvailable, attempt: 0},
		{name: "snoozed with negative delay", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeSnoozed, Delay: -time.Minute},
			state: store.StateAvailable, attempt: 0},
		{name: "released", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeReleased},
			state: store.StateAvailable, attempt: 0, runAtCheck: true},
		{name: "cancelled", maxAttempts: 3,
			c:     store.Completion{Outcome: store.OutcomeCancelled},
			state: store.StateCancelled, attempt: 1, finished: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			p := params(tenantA, "q", "k")
			p.MaxAttempts = tc.maxAttempts
			_, l := e.leaseJob(e.insertJob(p), time.Hour)
			c := tc.c
			c.Lease = l
			before := e.now()
			e.completeOK(c)
			after := e.now()
			j := e.get(tenantA, l.JobID)
			if j.State != tc.state || j.Attempt != tc.attempt {
				t.Errorf("state %s attempt %d, want %s attempt %d", j.State, j.Attempt, tc.state, tc.attempt)
			}
			if tc.finished {
				within(t, "FinishedAt", j.FinishedAt, before, after)
			} else {
				checkZeroTime(t, "FinishedAt", j.FinishedAt)
			}
			if tc.runAtCheck {
				within(t, "RunAt", j.RunAt, before.Add(tc.runAtOffset), after.Add(tc.runAtOffset))
			}
			if tc.state == store.StateAvailable && j.RunAt.After(after.Add(timeSlack)) {
				t.Errorf("available job has RunAt %v in the future (now %v)", j.RunAt, after)
			}
			if tc.errMsg != "" {
				if es := jobErrors(t, j); len(es) != 1 {
					t.Errorf("errors = %s, want exactly one entry", j.Errors)
				}
				checkLastError(t, j, 1, tc.errMsg, before, after)
			} else {
				checkNoErrors(t, j)
			}
			checkJSON(t, "Result", j.Result, tc.result)
			// Every outcome ends the lease and clears its fields (the
			// spec: "All leave the lease fields cleared"; store.Job: the
			// lease fields are valid only while running).
			checkZeroTime(t, "LeaseExpiresAt", j.LeaseExpiresAt)
			if j.LeaseToken != 0 || j.LeasedBy != "" {
				t.Errorf("lease fields after completion: token %d, leased_by %q; want 0 and \"\"", j.LeaseToken, j.LeasedBy)
			}
			if errs := e.complete(store.Completion{Lease: l, Outcome: store.OutcomeSucceeded}); errs[0] == nil {
				t.Errorf("completing the ended lease again succeeded, want ErrStaleLease")
			}
		})
	}
}

// testCompleteErrorsAccumulate follows one job through two failed attempts:
// each appends an entry, in order, and the last attempt makes it dead.
func testCompleteErrorsAccumulate(t *testing.T, open opener) {
	e := newEnv(t, open)
	p := params(tenantA, "q", "k")
	p.MaxAttempts = 2
	j := e.insertJob(p)
	start := e.now()
	messages := []string{"first failure", "second: with \"quotes\", a\nnewline and ünïcode"}
	for i, msg := range messages {
		_, l := e.leaseJob(j, time.Hour)
		if l.Attempt != i+1 {
			t.Fatalf("lease %d has attempt %d", i+1, l.Attempt)
		}
		// RetryIn in the past makes the retry due at once.
		e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeFailed, Error: msg, RetryIn: -time.Second})
		if i == 0 {
			if got := e.get(tenantA, j.ID).State; got != store.StateRetryable {
				t.Fatalf("after attempt 1 of 2 the job is %s, want retryable", got)
			}
			if n, _, err := e.s.PromoteScheduled(e.ctx(), 10); err != nil || n != 1 {
				t.Fatalf("PromoteScheduled = %d, %v; want 1, nil", n, err)
			}
		}
	}
	end := e.now()
	j = e.get(tenantA, j.ID)
	if j.State != store.StateDead || j.Attempt != 2 {
		t.Errorf("after attempt 2 of 2: %s attempt %d, want dead attempt 2", j.State, j.Attempt)
	}
	es := jobErrors(t, j)
	if len(es) != len(messages) {
		t.Fatalf("errors = %s, want %d entries", j.Errors, len(messages))
	}
	for i, got := range es {
		if got.Attempt != i+1 || got.Message != messages[i] {
			t.Errorf("errors[%d] = attempt %d %q, want attempt %d %q", i, got.Attempt, got.Message, i+1, messages[i])
		}
		within(t, fmt.Sprintf("errors[%d].at", i), got.At, start.Truncate(time.Second), end)
	}
	if es[1].At.Before(es[0].At) {
		t.Errorf("errors out of order: %v then %v", es[0].At, es[1].At)
	}
}

func testCompleteStale(t *testing.T, open opener) {
	e := newEnv(t, open)
	var ps []store.InsertParams
	for i := range 4 {
		ps = append(ps, params(tenantA, "q", fmt.Sprint("j", i)))
	}
	e.insert(ps...)
	js := e.lease(tenantA, "q", 4, time.Hour)
	if len(js) != 4 {
		t.Fatalf("leased %d jobs, want 4", len(js))
	}
	slices.SortFunc(js, byID)
	a, b, c, d := js[0], js[1], js[2], js[3]

	finished := e.insertJob(params(tenantA, "done", "finished"))
	_, lf := e.leaseJob(finished, time.Hour)
	e.completeOK(store.Completion{Lease: lf, Outcome: store.OutcomeSucceeded, Result: []byte(`{"first": true}`)})
	// An available job stores attempt 0 and token 0: a lease that matched
	// on attempt and token alone, without state = running, would take it.
	avail := e.insertJob(params(tenantA, "idle", "available"))

	cs := []store.Completion{
		{Lease: leaseOf(a), Outcome: store.OutcomeSucceeded, Result: []byte(`1`)},
		{Lease: store.Lease{JobID: b.ID, Attempt: b.Attempt, Token: b.LeaseToken ^ 1}, Outcome: store.OutcomeSucceeded},
		{Lease: store.Lease{JobID: c.ID, Attempt: c.Attempt + 1, Token: c.LeaseToken}, Outcome: store.OutcomeDead, Error: "x"},
		{Lease: lf, Outcome: store.OutcomeFailed, Error: "late", RetryIn: time.Hour},
		{Lease: store.Lease{JobID: avail.ID}, Outcome: store.OutcomeSucceeded},
		{Lease: leaseOf(d), Outcome: store.OutcomeFailed, Error: "boom", RetryIn: time.Hour},
		{Lease: store.Lease{JobID: unknownID, Attempt: 1, Token: 1}, Outcome: store.OutcomeSucceeded},
	}
	wantStale := []bool{false, true, true, true, true, false, true}
	errs := e.complete(cs...)
	for i, err := range errs {
		if wantStale[i] {
			wantErrIs(t, fmt.Sprintf("slot %d (job %d)", i, cs[i].Lease.JobID), err, store.ErrStaleLease)
		} else if err != nil {
			t.Errorf("slot %d (job %d): %v, want nil", i, cs[i].Lease.JobID, err)
		}
	}
	if got := e.get(tenantA, a.ID); got.State != store.StateSucceeded {
		t.Errorf("job a: %s, want succeeded", got.State)
	}
	if got := e.get(tenantA, d.ID); got.State != store.StateRetryable {
		t.Errorf("job d: %s, want retryable", got.State)
	}
	// Stale slots changed nothing.
	sameJob(t, e.get(tenantA, b.ID), b)
	sameJob(t, e.get(tenantA, c.ID), c)
	sameJob(t, e.get(tenantA, avail.ID), avail)
	if got := e.get(tenantA, finished.ID); got.State != store.StateSucceeded || !jsonEqual(got.Result, []byte(`{"first": true}`)) {
		t.Errorf("finished job: %s result %s, want succeeded with its first result", got.State, got.Result)
	}
}

func testCompleteTwice(t *testing.T, open opener) {
	t.Run("in two calls", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		_, l := e.leaseJob(e.insertJob(params(tenantA, "q", "k")), time.Hour)
		e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeSucceeded, Result: []byte(`{"n": 1}`)})
		before := e.get(tenantA, l.JobID)
		for _, c := range []store.Completion{
			{Lease: l, Outcome: store.OutcomeSucceeded, Result: []byte(`{"n": 2}`)},
			{Lease: l, Outcome: store.OutcomeFailed, Error: "late", RetryIn: time.Hour},
			{Lease: l, Outcome: store.OutcomeReleased},
		} {
			wantErrIs(t, fmt.Sprintf("second completion (outcome %d)", c.Outcome), e.complete(c)[0], store.ErrStaleLease)
		}
		sameJob(t, e.get(tenantA, l.JobID), before)
	})
	t.Run("in one call", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, open)
		_, l := e.leaseJob(e.insertJob(params(tenantA, "q", "k")), time.Hour)
		errs := e.complete(
			store.Completion{Lease: l, Outcome: store.OutcomeSucceeded},
			store.Completion{Lease: l, Outcome: store.OutcomeDead, Error: "x"},
		)
		// The completions apply in order: the first ends the lease, so
		// the second must find it stale.
		if errs[0] != nil {
			t.Errorf("first completion: %v, want nil", errs[0])
		}
		wantErrIs(t, "second completion of the same lease in one call", errs[1], store.ErrStaleLease)
		if got := e.get(tenantA, l.JobID); got.State != store.StateSucceeded {
			t.Errorf("job is %s, want succeeded (the first completion's outcome)", got.State)
		}
	})
}

func testCompleteBatch(t *testing.T, open opener) {
	e := newEnv(t, open)
	const n = 40
	ps := make([]store.InsertParams, n)
	for i := range ps {
		ps[i] = params(tenantA, "q", "k")
	}
	e.insert(ps...)
	js := e.lease(tenantA, "q", n, time.Hour)
	if len(js) != n {
		t.Fatalf("leased %d, want %d", len(js), n)
	}
	cs := make([]store.Completion, n)
	for i, j := range js {
		if i%2 == 0 {
			cs[i] = store.Completion{Lease: leaseOf(j), Outcome: store.OutcomeSucceeded, Result: fmt.Appendf(nil, `{"i": %d}`, i)}
		} else {
			cs[i] = store.Completion{Lease: leaseOf(j), Outcome: store.OutcomeFailed, Error: fmt.Sprint("e", i), RetryIn: time.Hour}
		}
	}
	for i, err := range e.complete(cs...) {
		if err != nil {
			t.Errorf("slot %d: %v", i, err)
		}
	}
	// Each completion landed on its own job.
	for i, j := range js {
		got := e.get(tenantA, j.ID)
		if i%2 == 0 {
			if got.State != store.StateSucceeded || !jsonEqual(got.Result, cs[i].Result) {
				t.Errorf("job %d: %s result %s, want succeeded %s", j.ID, got.State, got.Result, cs[i].Result)
			}
		} else if es := jobErrors(t, got); got.State != store.StateRetryable || len(es) != 1 || es[0].Message != cs[i].Error {
			t.Errorf("job %d: %s errors %s, want retryable with error %q", j.ID, got.State, got.Errors, cs[i].Error)
		}
	}
}

func testCompleteEmpty(t *testing.T, open opener) {
	e := newEnv(t, open)
	errs, err := e.s.Complete(e.ctx(), nil)
	if err != nil || len(errs) != 0 {
		t.Errorf("Complete(nil) = %v, %v; want no slots and no error", errs, err)
	}
}

var heartbeatTests = []suiteTest{
	{"Extends", testHeartbeatExtends},
	{"Stale", testHeartbeatStale},
}

func testHeartbeatExtends(t *testing.T, open opener) {
	e := newEnv(t, open)
	e.insert(params(tenantA, "q", "a"), params(tenantA, "q", "b"))
	js := e.lease(tenantA, "q", 2, time.Minute)
	if len(js) != 2 {
		t.Fatalf("leased %d, want 2", len(js))
	}
	before := e.now()
	stale, err := e.s.Heartbeat(e.ctx(), []store.Lease{leaseOf(js[0]), leaseOf(js[1])}, time.Hour)
	after := e.now()
	if err != nil || len(stale) != 0 {
		t.Fatalf("Heartbeat = %v, %v; want no stale leases", stale, err)
	}
	for _, j := range js {
		got := e.get(tenantA, j.ID)
		within(t, fmt.Sprintf("job %d LeaseExpiresAt", j.ID), got.LeaseExpiresAt, before.Add(time.Hour), after.Add(time.Hour))
		if got.State != store.StateRunning || got.LeaseToken != j.LeaseToken || got.Attempt != j.Attempt {
			t.Errorf("job %d after heartbeat: %s token %d attempt %d; want the same running lease", j.ID, got.State, got.LeaseToken, got.Attempt)
		}
	}
	if stale, err := e.s.Heartbeat(e.ctx(), nil, time.Hour); err != nil || len(stale) != 0 {
		t.Errorf("Heartbeat(nil) = %v, %v; want nothing", stale, err)
	}
}

func testHeartbeatStale(t *testing.T, open opener) {
	e := newEnv(t, open)
	ps := make([]store.InsertParams, 5)
	for i := range ps {
		ps[i] = params(tenantA, "q", fmt.Sprint("j", i))
	}
	e.insert(ps...)
	js := e.lease(tenantA, "q", 5, time.Minute)
	if len(js) != 5 {
		t.Fatalf("leased %d, want 5", len(js))
	}
	slices.SortFunc(js, byID)
	live, cancelled, wrongToken, wrongAttempt, completed := js[0], js[1], js[2], js[3], js[4]
	if _, err := e.s.Cancel(e.ctx(), tenantA, cancelled.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	e.completeOK(store.Completion{Lease: leaseOf(completed), Outcome: store.OutcomeSucceeded})
	leases := []store.Lease{
		leaseOf(live),
		leaseOf(cancelled), // voided by Cancel
		{JobID: wrongToken.ID, Attempt: wrongToken.Attempt, Token: wrongToken.LeaseToken ^ 1},
		{JobID: wrongAttempt.ID, Attempt: wrongAttempt.Attempt + 1, Token: wrongAttempt.LeaseToken},
		leaseOf(completed),
		{JobID: unknownID, Attempt: 1, Token: 1},
	}
	stale, err := e.s.Heartbeat(e.ctx(), leases, time.Hour)
	if err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	key := func(l store.Lease) string { return fmt.Sprintf("%d/%d/%d", l.JobID, l.Attempt, l.Token) }
	var got, want []string
	for _, l := range stale {
		got = append(got, key(l))
	}
	for _, l := range leases[1:] {
		want = append(want, key(l))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("stale leases = %v, want %v (every lease but the live one)", got, want)
	}
	if got := e.get(tenantA, live.ID); !got.LeaseExpiresAt.After(live.LeaseExpiresAt) {
		t.Errorf("live lease expires %v, not extended past %v", got.LeaseExpiresAt, live.LeaseExpiresAt)
	}
	// A stale heartbeat must not extend the job's real lease.
	for _, j := range []*store.Job{wrongToken, wrongAttempt} {
		if got := e.get(tenantA, j.ID); !got.LeaseExpiresAt.Equal(j.LeaseExpiresAt) {
			t.Errorf("job %d: a stale heartbeat moved lease_expires_at from %v to %v", j.ID, j.LeaseExpiresAt, got.LeaseExpiresAt)
		}
	}
}

var progressTests = []suiteTest{
	{"SetProgress", testSetProgress},
}

func testSetProgress(t *testing.T, open opener) {
	e := newEnv(t, open)
	j, l := e.leaseJob(e.insertJob(params(tenantA, "q", "k")), time.Hour)
	for _, p := range []string{`{"pct": 10}`, `{"pct": 55, "step": "upload", "items": [1, 2]}`} {
		if err := e.s.SetProgress(e.ctx(), l, []byte(p)); err != nil {
			t.Fatalf("SetProgress(%s): %v", p, err)
		}
		got := e.get(tenantA, j.ID)
		checkJSON(t, "Progress", got.Progress, []byte(p))
		if got.State != store.StateRunning || got.LeaseToken != l.Token {
			t.Errorf("SetProgress changed the lease: %s token %d", got.State, got.LeaseToken)
		}
	}
	want := []byte(`{"pct": 55, "step": "upload", "items": [1, 2]}`)
	for name, bad := range map[string]store.Lease{
		"wrong token":   {JobID: l.JobID, Attempt: l.Attempt, Token: l.Token ^ 1},
		"wrong attempt": {JobID: l.JobID, Attempt: l.Attempt + 1, Token: l.Token},
		"unknown job":   {JobID: unknownID, Attempt: 1, Token: 1},
	} {
		wantErrIs(t, "SetProgress with "+name, e.s.SetProgress(e.ctx(), bad, []byte(`{"pct": 99}`)), store.ErrStaleLease)
	}
	checkJSON(t, "Progress after stale updates", e.get(tenantA, j.ID).Progress, want)

	e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeSucceeded})
	wantErrIs(t, "SetProgress after the job finished", e.s.SetProgress(e.ctx(), l, []byte(`{"pct": 100}`)), store.ErrStaleLease)
	checkJSON(t, "Progress after finishing", e.get(tenantA, j.ID).Progress, want)
}
