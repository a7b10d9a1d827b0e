package storetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

const (
	// waitTimeout bounds every wait (a notification, the database clock
	// passing a point). It is a failure bound, not an expectation: waits
	// normally end within milliseconds.
	waitTimeout = 10 * time.Second

	// timeSlack absorbs storage precision (microseconds in both schemas)
	// when a stored time is compared with clock readings taken around the
	// operation; any real mistake (a wrong delay, the process clock instead
	// of the database's) is far larger.
	timeSlack = time.Millisecond

	tenantA = "default"
	tenantB = "tenant-b"

	// unknownID is an id no test ever reaches.
	unknownID = int64(1) << 60
)

// env is one test's store and, when the test listens, the notifications it
// received.
type env struct {
	t   *testing.T
	s   store.Store
	rec *recorder // nil unless opened with newListeningEnv
}

// ctx is the test's context, cancelled when the test ends.
func (e *env) ctx() context.Context { return e.t.Context() }

// newEnv opens a fresh store without a listener, so drivers are also run
// without one registered.
func newEnv(t *testing.T, open opener) *env {
	t.Helper()
	return &env{t: t, s: open(t)}
}

// newListeningEnv opens a fresh store and registers a recorder with Listen
// before anything else touches the store, as the contract requires.
func newListeningEnv(t *testing.T, open opener) *env {
	t.Helper()
	e := newEnv(t, open)
	e.rec = newRecorder()
	e.s.Listen(e.rec.add)
	return e
}

// with returns e bound to the subtest t, for subtests sharing one store.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// params returns insert parameters with every required field set.
func params(tenant, queue, kind string) store.InsertParams {
	return store.InsertParams{
		TenantID:    tenant,
		Queue:       queue,
		Kind:        kind,
		Args:        []byte(`{}`),
		Priority:    2,
		MaxAttempts: 3,
	}
}

func (e *env) now() time.Time {
	e.t.Helper()
	n, err := e.s.Now(e.ctx())
	if err != nil {
		e.t.Fatalf("Now: %v", err)
	}
	if n.IsZero() {
		e.t.Fatalf("Now returned the zero time")
	}
	return n
}

// waitPast polls the database clock until it is strictly after ts and
// returns the reading. This is how the suite lets a lease, a leadership or a
// run_at pass without sleeping.
func (e *env) waitPast(ts time.Time) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		n := e.now()
		if n.After(ts) {
			return n
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("database clock did not pass %v within %v (last reading %v)", ts, waitTimeout, n)
		}
	}
}

func (e *env) insert(ps ...store.InsertParams) []store.InsertResult {
	e.t.Helper()
	res, err := e.s.Insert(e.ctx(), ps)
	if err != nil {
		e.t.Fatalf("Insert: %v", err)
	}
	if len(res) != len(ps) {
		e.t.Fatalf("Insert returned %d results for %d jobs", len(res), len(ps))
	}
	for i, r := range res {
		if r.Job == nil {
			e.t.Fatalf("Insert result %d has a nil Job", i)
		}
		checkShape(e.t, "Insert", r.Job)
	}
	return res
}

// insertJob inserts one job that must be new.
func (e *env) insertJob(p store.InsertParams) *store.Job {
	e.t.Helper()
	r := e.insert(p)[0]
	if r.Existing {
		e.t.Fatalf("Insert(%q): Existing = true, want a new job", p.UniqueKey)
	}
	return r.Job
}

func (e *env) get(tenant string, id int64) *store.Job {
	e.t.Helper()
	j, err := e.s.Get(e.ctx(), tenant, id)
	if err != nil {
		e.t.Fatalf("Get(%q, %d): %v", tenant, id, err)
	}
	if j == nil {
		e.t.Fatalf("Get(%q, %d) returned a nil job", tenant, id)
	}
	checkShape(e.t, "Get", j)
	return j
}

// checkShape checks what every read of a job must look like whatever its
// state: the documented encodings of the columns that are never NULL.
func checkShape(t *testing.T, op string, j *store.Job) {
	t.Helper()
	if j.Tags == nil {
		t.Errorf("%s: job %d has nil Tags, want a non-nil slice", op, j.ID)
	}
	var errs []json.RawMessage
	if err := json.Unmarshal(j.Errors, &errs); err != nil || errs == nil {
		t.Errorf("%s: job %d has Errors %q, want a JSON array (\"[]\" when none)", op, j.ID, j.Errors)
	}
	if !json.Valid(j.Args) {
		t.Errorf("%s: job %d has Args %q, want JSON", op, j.ID, j.Args)
	}
	if !slices.Contains(store.AllStates, j.State) {
		t.Errorf("%s: job %d has unknown state %q", op, j.ID, j.State)
	}
}

func (e *env) lease(tenant, queue string, limit int, d time.Duration) []*store.Job {
	e.t.Helper()
	js, err := e.s.Lease(e.ctx(), store.LeaseParams{TenantID: tenant, Queue: queue, Limit: limit, LeasedBy: "storetest", Duration: d})
	if err != nil {
		e.t.Fatalf("Lease(%q, %q, %d): %v", tenant, queue, limit, err)
	}
	if len(js) > limit {
		e.t.Fatalf("Lease(limit %d) returned %d jobs", limit, len(js))
	}
	for _, j := range js {
		checkShape(e.t, "Lease", j)
	}
	return js
}

// leaseJob leases from j's queue and requires exactly j back.
func (e *env) leaseJob(j *store.Job, d time.Duration) (*store.Job, store.Lease) {
	e.t.Helper()
	js := e.lease(j.TenantID, j.Queue, 1, d)
	if len(js) != 1 || js[0].ID != j.ID {
		e.t.Fatalf("Lease(%s/%s, limit 1) = %v, want job %d (the first in priority, run_at, id order)", j.TenantID, j.Queue, ids(js), j.ID)
	}
	return js[0], leaseOf(js[0])
}

func leaseOf(j *store.Job) store.Lease {
	return store.Lease{JobID: j.ID, Attempt: j.Attempt, Token: j.LeaseToken}
}

// complete runs Complete and checks the shape of its answer.
func (e *env) complete(cs ...store.Completion) []error {
	e.t.Helper()
	errs, err := e.s.Complete(e.ctx(), cs)
	if err != nil {
		e.t.Fatalf("Complete: %v", err)
	}
	if len(errs) != len(cs) {
		e.t.Fatalf("Complete returned %d slots for %d completions", len(errs), len(cs))
	}
	return errs
}

// completeOK completes one lease that must still be current.
func (e *env) completeOK(c store.Completion) {
	e.t.Helper()
	if err := e.complete(c)[0]; err != nil {
		e.t.Fatalf("Complete(job %d, outcome %d): %v, want nil", c.Lease.JobID, c.Outcome, err)
	}
}

// inState creates a job from p and drives it into state through the public
// API. For the states that pass through running, the job is given priority 1
// and a run_at in 2000 so that it is first in its queue's lease order; it
// returns the lease the job was (last) leased with.
func (e *env) inState(p store.InsertParams, state string) (*store.Job, store.Lease) {
	e.t.Helper()
	var l store.Lease
	switch state {
	case store.StateScheduled:
		p.RunAt, p.Delay = time.Time{}, time.Hour
	case store.StateAvailable:
	case store.StateRunning, store.StateRetryable, store.StateSucceeded, store.StateDead:
		p.Priority, p.RunAt, p.Delay = 1, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 0
		if p.MaxAttempts < 2 {
			p.MaxAttempts = 2
		}
	case store.StateCancelled:
	default:
		e.t.Fatalf("inState: unknown state %q", state)
	}
	j := e.insertJob(p)
	switch state {
	case store.StateRunning, store.StateRetryable, store.StateSucceeded, store.StateDead:
		_, l = e.leaseJob(j, time.Hour)
	}
	switch state {
	case store.StateRetryable:
		e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeFailed, Error: "fixture failure", RetryIn: time.Hour})
	case store.StateSucceeded:
		e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeSucceeded})
	case store.StateDead:
		e.completeOK(store.Completion{Lease: l, Outcome: store.OutcomeDead, Error: "fixture death"})
	case store.StateCancelled:
		if _, err := e.s.Cancel(e.ctx(), j.TenantID, j.ID); err != nil {
			e.t.Fatalf("Cancel(%d): %v", j.ID, err)
		}
	}
	j = e.get(j.TenantID, j.ID)
	if j.State != state {
		e.t.Fatalf("fixture job %d is %s, want %s", j.ID, j.State, state)
	}
	return j, l
}

func (e *env) list(p store.ListParams) []*store.Job {
	e.t.Helper()
	js, err := e.s.List(e.ctx(), p)
	if err != nil {
		e.t.Fatalf("List(%+v): %v", p, err)
	}
	for _, j := range js {
		checkShape(e.t, "List", j)
	}
	return js
}

// allJobs lists every job of a tenant, newest first.
func (e *env) allJobs(tenant string) []*store.Job {
	e.t.Helper()
	return e.list(store.ListParams{TenantID: tenant, Limit: 10000})
}

func (e *env) queues(tenant string) map[string]store.Queue {
	e.t.Helper()
	qs, err := e.s.Queues(e.ctx(), tenant)
	if err != nil {
		e.t.Fatalf("Queues(%q): %v", tenant, err)
	}
	m := make(map[string]store.Queue, len(qs))
	for _, q := range qs {
		if _, dup := m[q.Name]; dup {
			e.t.Errorf("Queues(%q) lists queue %q twice", tenant, q.Name)
		}
		m[q.Name] = q
	}
	return m
}

func (e *env) setPaused(tenant, queue string, paused bool) {
	e.t.Helper()
	if err := e.s.SetQueuePaused(e.ctx(), tenant, queue, paused); err != nil {
		e.t.Fatalf("SetQueuePaused(%q, %q, %v): %v", tenant, queue, paused, err)
	}
}

func ids(js []*store.Job) []int64 {
	out := make([]int64, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

func jobIDs(js ...*store.Job) []int64 { return ids(js) }

func byID(a, b *store.Job) int { return cmp.Compare(a.ID, b.ID) }

// sortedIDs returns the ids of js in ascending order.
func sortedIDs(js []*store.Job) []int64 {
	out := ids(js)
	slices.Sort(out)
	return out
}

// jsonEqual compares two JSON documents by meaning: PostgreSQL's jsonb
// reorders keys and drops whitespace, SQLite keeps the text as given.
// Numbers are compared as written, so a driver that round-trips JSON through
// float64 and loses precision is caught.
func jsonEqual(a, b []byte) bool {
	x, errX := decodeJSON(a)
	y, errY := decodeJSON(b)
	return errX == nil && errY == nil && reflect.DeepEqual(x, y)
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func checkJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Errorf("%s = %q, want nil (SQL NULL)", what, got)
		}
		return
	}
	if !jsonEqual(got, want) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

// within checks lo <= got <= hi, give or take storage precision.
func within(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.IsZero() {
		t.Errorf("%s is zero, want within [%v, %v]", what, lo, hi)
		return
	}
	if got.Before(lo.Add(-timeSlack)) || got.After(hi.Add(timeSlack)) {
		t.Errorf("%s = %v, want within [%v, %v]", what, got, lo, hi)
	}
}

// durationWithin checks lo <= got <= hi, give or take storage precision.
func durationWithin(t *testing.T, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got < lo-timeSlack || got > hi+timeSlack {
		t.Errorf("%s = %v, want within [%v, %v]", what, got, lo, hi)
	}
}

func checkZeroTime(t *testing.T, what string, got time.Time) {
	t.Helper()
	if !got.IsZero() {
		t.Errorf("%s = %v, want zero", what, got)
	}
}

// sameJob compares every field of two reads of one job.
func sameJob(t *testing.T, got, want *store.Job) {
	t.Helper()
	type field struct {
		name      string
		got, want any
	}
	fs := []field{
		{"ID", got.ID, want.ID},
		{"TenantID", got.TenantID, want.TenantID},
		{"Queue", got.Queue, want.Queue},
		{"Kind", got.Kind, want.Kind},
		{"Priority", got.Priority, want.Priority},
		{"State", got.State, want.State},
		{"Attempt", got.Attempt, want.Attempt},
		{"MaxAttempts", got.MaxAttempts, want.MaxAttempts},
		{"Timeout", got.Timeout, want.Timeout},
		{"UniqueKey", got.UniqueKey, want.UniqueKey},
		{"LeaseToken", got.LeaseToken, want.LeaseToken},
		{"LeasedBy", got.LeasedBy, want.LeasedBy},
	}
	for _, f := range fs {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("job %d: %s = %v, want %v", want.ID, f.name, f.got, f.want)
		}
	}
	if !slices.Equal(got.Tags, want.Tags) {
		t.Errorf("job %d: Tags = %q, want %q", want.ID, got.Tags, want.Tags)
	}
	times := []struct {
		name      string
		got, want time.Time
	}{
		{"RunAt", got.RunAt, want.RunAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"StartedAt", got.StartedAt, want.StartedAt},
		{"FinishedAt", got.FinishedAt, want.FinishedAt},
		{"LeaseExpiresAt", got.LeaseExpiresAt, want.LeaseExpiresAt},
	}
	for _, tm := range times {
		if !tm.got.Equal(tm.want) {
			t.Errorf("job %d: %s = %v, want %v", want.ID, tm.name, tm.got, tm.want)
		}
	}
	jsons := []struct {
		name      string
		got, want []byte
	}{
		{"Args", got.Args, want.Args},
		{"Result", got.Result, want.Result},
		{"Errors", got.Errors, want.Errors},
		{"Progress", got.Progress, want.Progress},
	}
	for _, js := range jsons {
		if (js.got == nil) != (js.want == nil) || (js.want != nil && !jsonEqual(js.got, js.want)) {
			t.Errorf("job %d: %s = %q, want %q", want.ID, js.name, js.got, js.want)
		}
	}
}

// jobError is one entry of a job's errors column.
type jobError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// jobErrors decodes a job's errors column, checking that every entry carries
// the three documented keys and that "at" is an RFC 3339 time in UTC.
func jobErrors(t *testing.T, j *store.Job) []jobError {
	t.Helper()
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(j.Errors, &raw); err != nil {
		t.Fatalf("job %d: errors %q is not a JSON array of objects: %v", j.ID, j.Errors, err)
	}
	var out []jobError
	if err := json.Unmarshal(j.Errors, &out); err != nil {
		t.Fatalf("job %d: errors %q do not decode into {attempt int, at time.Time, message string}: %v", j.ID, j.Errors, err)
	}
	for i, m := range raw {
		for _, k := range []string{"attempt", "at", "message"} {
			if _, ok := m[k]; !ok {
				t.Errorf("job %d: errors[%d] = %s has no %q key", j.ID, i, j.Errors, k)
			}
		}
		var at string
		if err := json.Unmarshal(m["at"], &at); err != nil {
			t.Errorf("job %d: errors[%d].at = %s is not a string", j.ID, i, m["at"])
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, at); err != nil {
			t.Errorf("job %d: errors[%d].at = %q is not RFC 3339: %v", j.ID, i, at, err)
		}
		if _, off := out[i].At.Zone(); off != 0 {
			t.Errorf("job %d: errors[%d].at = %q is not in UTC", j.ID, i, at)
		}
	}
	return out
}

func checkNoErrors(t *testing.T, j *store.Job) {
	t.Helper()
	if !jsonEqual(j.Errors, []byte(`[]`)) {
		t.Errorf("job %d: Errors = %q, want []", j.ID, j.Errors)
	}
}

// checkLastError checks that the last recorded error is for attempt, carries a
// message starting with msgPrefix, and was recorded between lo and hi. "at"
// may have whole-second precision (RFC 3339 allows it), so lo is rounded
// down to the second.
func checkLastError(t *testing.T, j *store.Job, attempt int, msgPrefix string, lo, hi time.Time) {
	t.Helper()
	es := jobErrors(t, j)
	if len(es) == 0 {
		t.Errorf("job %d: no error recorded, want one for attempt %d", j.ID, attempt)
		return
	}
	last := es[len(es)-1]
	if last.Attempt != attempt {
		t.Errorf("job %d: last error attempt = %d, want %d", j.ID, last.Attempt, attempt)
	}
	if !strings.HasPrefix(last.Message, msgPrefix) {
		t.Errorf("job %d: last error message = %q, want it to start with %q", j.ID, last.Message, msgPrefix)
	}
	within(t, fmt.Sprintf("job %d: last error at", j.ID), last.At, lo.Truncate(time.Second), hi)
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want errors.Is(err, %q)", what, err, target)
	}
}

// recorder collects notifications. add never blocks, as Listen requires.
type recorder struct {
	mu   sync.Mutex
	got  []store.Notification
	wake chan struct{} // closed and replaced on every notification
	seq  int
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{})} }

func (r *recorder) add(n store.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	close(r.wake)
	r.wake = make(chan struct{})
}

// waitFor returns the first notification that matches, waiting for it.
func (e *env) waitFor(what string, match func(store.Notification) bool) store.Notification {
	e.t.Helper()
	if e.rec == nil {
		e.t.Fatalf("waitFor(%s) on a store without a listener", what)
	}
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		e.rec.mu.Lock()
		for _, n := range e.rec.got {
			if match(n) {
				e.rec.mu.Unlock()
				return n
			}
		}
		wake := e.rec.wake
		got := slices.Clone(e.rec.got)
		e.rec.mu.Unlock()
		select {
		case <-wake:
		case <-timeout.C:
			e.t.Fatalf("no %s notification within %v; got %+v", what, waitTimeout, got)
		}
	}
}

func isInsert(tenant, queue string) func(store.Notification) bool {
	return func(n store.Notification) bool {
		return n.Kind == store.NotifyInsert && n.TenantID == tenant && n.Queue == queue
	}
}

func (e *env) waitInsert(tenant, queue string) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%s for %s/%s", store.NotifyInsert, tenant, queue), isInsert(tenant, queue))
}

// barrier returns every notification received before a fresh marker
// notification (a NotifyQueue for a queue of its own). Notifications are sent
// after their changes commit, so whatever an operation that returned before
// the barrier was going to send has arrived by then; counting them checks
// "once per queue, not per job". It cannot prove an absence on a driver
// that delivers out of commit order, but it never fails a correct one.
func (e *env) barrier() []store.Notification {
	e.t.Helper()
	e.rec.mu.Lock()
	e.rec.seq++
	q := fmt.Sprintf("barrier-%d", e.rec.seq)
	e.rec.mu.Unlock()
	const tenant = "storetest-barrier"
	e.setPaused(tenant, q, true)
	e.waitFor("barrier", func(n store.Notification) bool {
		return n.Kind == store.NotifyQueue && n.TenantID == tenant && n.Queue == q
	})
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	for i, n := range e.rec.got {
		if n.Kind == store.NotifyQueue && n.TenantID == tenant && n.Queue == q {
			return slices.Clone(e.rec.got[:i])
		}
	}
	panic("unreachable: the barrier notification was seen")
}

// drain forgets every notification received so far, after a barrier, so a
// later wait is satisfied only by what comes next.
func (e *env) drain() {
	e.t.Helper()
	e.barrier()
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	e.rec.got = nil
}

func count(ns []store.Notification, match func(store.Notification) bool) int {
	c := 0
	for _, n := range ns {
		if match(n) {
			c++
		}
	}
	return c
}
