package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Boxed constants: converting a string to an interface allocates, and Insert
// passes a dozen interfaces per job.
var (
	boxAvailable any = store.StateAvailable
	boxScheduled any = store.StateScheduled
	boxEmptyTags any = "[]"
	boxEmptyArgs any = "{}"
)

// Insert inserts jobs in one transaction. The rows are bound and most of the
// resulting Jobs built on the caller's goroutine, so that the writer, the one
// serial resource, spends its time in SQLite. For the same reason now (for
// created_at, Delay and the scheduled-or-available decision) is read here,
// before the op waits for its group commit; that wait is all it can differ
// from the writer's reading.
func (s *Store) Insert(ctx context.Context, params []store.InsertParams) ([]store.InsertResult, error) {
	if len(params) == 0 {
		return []store.InsertResult{}, nil
	}
	plan, err := planInsert(params, time.Now())
	if err != nil {
		return nil, fmt.Errorf("sqlite: insert: %w", err)
	}
	submit := s.w.do
	if n := len(params); !plan.hasUnique && (n <= exactRows || n&(n-1) == 0 && n <= 1<<(insertSizes-1)) {
		// insertRows runs one statement for this many rows.
		submit = s.w.doOneStatement
	}
	if err := submit(ctx, true, plan.run); err != nil {
		return nil, fmt.Errorf("sqlite: insert: %w", err)
	}
	return plan.results(), nil
}

// insertPlan is an Insert prepared outside the writer: the bound values of
// every row, built on the caller's goroutine. run inserts the jobs in the
// writer's transaction, and may be retried there; results then builds
// what Insert answers.
type insertPlan struct {
	params    []store.InsertParams
	nowUS     int64
	args      []any
	runAts    []int64
	hasUnique bool
	ids       []int64            // set by run: 0 for a job not inserted
	existing  map[int]*store.Job // set by run: the live jobs unique keys matched
}

func planInsert(params []store.InsertParams, now time.Time) (*insertPlan, error) {
	nowUS := now.UnixMicro()
	args := make([]any, len(params)*insertCols)
	runAts := make([]int64, len(params))
	var prevTenant, prevQueue, prevKind string
	var boxTenant, boxQueue, boxKind, boxNow any
	boxNow = nowUS
	hasUnique := false
	for i := range params {
		p := &params[i]
		runAt := nowUS + p.Delay.Microseconds()
		if !p.RunAt.IsZero() {
			runAt = p.RunAt.UnixMicro()
		}
		runAts[i] = runAt
		tags, err := encodeTags(p.Tags)
		if err != nil {
			return nil, fmt.Errorf("job %d: %w", i, err)
		}
		if boxTenant == nil || p.TenantID != prevTenant {
			prevTenant, boxTenant = p.TenantID, p.TenantID
		}
		if boxQueue == nil || p.Queue != prevQueue {
			prevQueue, boxQueue = p.Queue, p.Queue
		}
		if boxKind == nil || p.Kind != prevKind {
			prevKind, boxKind = p.Kind, p.Kind
		}
		a := args[i*insertCols : (i+1)*insertCols : (i+1)*insertCols]
		a[0] = boxTenant
		a[1] = boxQueue
		a[2] = boxKind
		if len(p.Args) == 0 {
			a[3] = boxEmptyArgs
		} else {
			a[3] = string(p.Args)
		}
		a[4] = int64(p.Priority)
		if runAt > nowUS {
			a[5] = boxScheduled
		} else {
			a[5] = boxAvailable
		}
		a[6] = int64(p.MaxAttempts)
		if runAt == nowUS {
			a[7] = boxNow
		} else {
			a[7] = runAt
		}
		a[8] = boxNow
		a[9] = p.Timeout.Milliseconds()
		a[10] = nullString(p.UniqueKey)
		if tags == "[]" {
			a[11] = boxEmptyTags
		} else {
			a[11] = tags
		}
		hasUnique = hasUnique || p.UniqueKey != ""
	}
	return &insertPlan{params: params, nowUS: nowUS, args: args, runAts: runAts, hasUnique: hasUnique,
		ids: make([]int64, len(params))}, nil
}

// run inserts the plan's jobs in t and queues their notifications.
func (pl *insertPlan) run(t *wtx) error {
	params, args, ids := pl.params, pl.args, pl.ids
	if pl.hasUnique {
		pl.existing = nil
		start := 0 // the first job of the pending run of jobs without a key
		for i := range params {
			if params[i].UniqueKey == "" {
				continue
			}
			if err := t.insertRows(args, ids, start, i); err != nil {
				return err
			}
			start = i + 1
			j, err := scanJob(t.queryRow(stJobByUnique, params[i].TenantID, params[i].UniqueKey))
			switch {
			case err == nil:
				if pl.existing == nil {
					pl.existing = make(map[int]*store.Job)
				}
				pl.existing[i] = j
				ids[i] = 0
				continue
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if err := t.insertRows(args, ids, i, i+1); err != nil {
				return err
			}
		}
		if err := t.insertRows(args, ids, start, len(params)); err != nil {
			return err
		}
	} else if err := t.insertRows(args, ids, 0, len(params)); err != nil {
		return err
	}
	var earliest int64
	scheduled := false
	for i := range params {
		if ids[i] == 0 {
			continue
		}
		if pl.scheduled(i) {
			if !scheduled || pl.runAts[i] < earliest {
				earliest = pl.runAts[i]
			}
			scheduled = true
			continue
		}
		t.notify(store.Notification{Kind: store.NotifyInsert, TenantID: params[i].TenantID, Queue: params[i].Queue})
	}
	if scheduled {
		t.notify(store.Notification{Kind: store.NotifyScheduled, At: fromMicros(earliest)})
	}
	return nil
}

// scheduled reports whether planInsert made job i scheduled rather than
// available (its run_at was after the plan's now).
func (pl *insertPlan) scheduled(i int) bool {
	return pl.args[i*insertCols+stateArg] == boxScheduled
}

// mergePlans returns one plan inserting the jobs of ps in order, so that
// the jobs of many events go in the fewest statements. After it ran,
// scatter gives each of ps its share of the outcome, for results.
func mergePlans(ps []*insertPlan) *insertPlan {
	if len(ps) == 1 {
		return ps[0]
	}
	n := 0
	for _, p := range ps {
		n += len(p.params)
	}
	m := &insertPlan{params: make([]store.InsertParams, 0, n), args: make([]any, 0, n*insertCols),
		runAts: make([]int64, 0, n), ids: make([]int64, n)}
	for _, p := range ps {
		m.params = append(m.params, p.params...)
		m.args = append(m.args, p.args...)
		m.runAts = append(m.runAts, p.runAts...)
		m.hasUnique = m.hasUnique || p.hasUnique
	}
	return m
}

// scatter copies the outcome of the merged plan m, made by mergePlans(ps),
// to ps.
func (m *insertPlan) scatter(ps []*insertPlan) {
	if len(ps) == 1 && ps[0] == m {
		return
	}
	off := 0
	for _, p := range ps {
		copy(p.ids, m.ids[off:])
		p.existing = nil
		for k := range p.params {
			if j, ok := m.existing[off+k]; ok {
				if p.existing == nil {
					p.existing = make(map[int]*store.Job)
				}
				p.existing[k] = j
			}
		}
		off += len(p.params)
	}
}

// results builds what Insert answers once run has committed.
func (pl *insertPlan) results() []store.InsertResult {
	params := pl.params
	out := make([]store.InsertResult, len(params))
	jobs := make([]store.Job, len(params)) // one allocation for all the new jobs
	created := fromMicros(pl.nowUS)
	for i := range params {
		if j, ok := pl.existing[i]; ok {
			out[i] = store.InsertResult{Job: j, Existing: true}
			continue
		}
		p := &params[i]
		j := &jobs[i]
		*j = store.Job{
			ID:          pl.ids[i],
			TenantID:    p.TenantID,
			Queue:       p.Queue,
			Kind:        p.Kind,
			Args:        p.Args,
			Priority:    p.Priority,
			State:       store.StateAvailable,
			MaxAttempts: p.MaxAttempts,
			RunAt:       fromMicros(pl.runAts[i]),
			CreatedAt:   created,
			Timeout:     time.Duration(p.Timeout.Milliseconds()) * time.Millisecond,
			UniqueKey:   p.UniqueKey,
			Tags:        p.Tags,
			Errors:      []byte("[]"),
		}
		if len(j.Args) == 0 {
			j.Args = []byte("{}")
		}
		if j.Tags == nil {
			j.Tags = []string{}
		}
		if pl.scheduled(i) {
			j.State = store.StateScheduled
		}
		out[i] = store.InsertResult{Job: j}
	}
	return out
}

// insertRows inserts jobs lo..hi-1, whose bound values are args[lo*insertCols:
// hi*insertCols], with as few multi-row INSERTs as possible (one for up to
// exactRows), and records their ids.
func (t *wtx) insertRows(args []any, ids []int64, lo, hi int) error {
	for lo < hi {
		size, st := hi-lo, stInsertExact0+stmtID(hi-lo-1)
		if size > exactRows {
			k := min(bits.Len(uint(size))-1, insertSizes-1) // largest 1<<k <= size
			size, st = 1<<k, stInsert0+stmtID(k)
		}
		res, err := t.exec(st, args[lo*insertCols:(lo+size)*insertCols]...)
		if err != nil {
			return err
		}
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		// One statement inserts its VALUES rows in order and, with
		// AUTOINCREMENT and the single writer, gives them consecutive ids.
		first := last - int64(size) + 1
		for r := range size {
			ids[lo+r] = first + int64(r)
		}
		lo += size
	}
	return nil
}

// Lease moves up to p.Limit available jobs to running. Leases are not
// durable on their own: see the package comment.
func (s *Store) Lease(ctx context.Context, p store.LeaseParams) ([]*store.Job, error) {
	if p.Limit <= 0 {
		return []*store.Job{}, nil
	}
	var (
		nowUS  int64
		expUS  int64
		leased []store.Job
		tags   []string // each job's tags column, decoded off the writer
	)
	leasedBy := any(p.LeasedBy)
	err := s.w.do(ctx, false, func(t *wtx) error {
		nowUS = t.nowUS
		expUS = t.nowUS + p.Duration.Microseconds()
		// Read the jobs in lease order, then move them all to running with
		// multi-row UPDATEs. One UPDATE … RETURNING would do both, but
		// SQLite collects RETURNING rows in a temporary b-tree first, which
		// costs more than reading the rows directly.
		rows, err := t.query(stLeaseSelect, p.TenantID, p.Queue, int64(p.Limit))
		if err != nil {
			return err
		}
		r := t.w.leaseRow
		leased = make([]store.Job, 0, min(p.Limit, 256))
		tags = make([]string, 0, min(p.Limit, 256))
		for rows.Next() {
			if err := rows.Scan(r.dest...); err != nil {
				rows.Close()
				return err
			}
			leased = append(leased, store.Job{
				ID:          int64(r.id),
				Kind:        r.kind,
				Args:        r.args,
				Priority:    int(r.priority),
				Attempt:     int(r.attempt) + 1,
				MaxAttempts: int(r.maxAttempts),
				RunAt:       fromMicros(int64(r.runAt)),
				CreatedAt:   fromMicros(int64(r.createdAt)),
				Timeout:     time.Duration(r.timeoutMS) * time.Millisecond,
				UniqueKey:   string(r.uniqueKey),
				Result:      r.result,
				Errors:      r.errors,
				Progress:    r.progress,
				LeaseToken:  newToken(),
			})
			tags = append(tags, r.tags)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		return t.markLeased(leased, expUS, nowUS, leasedBy)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: lease: %w", err)
	}
	started, expires := fromMicros(nowUS), fromMicros(expUS)
	jobs := make([]*store.Job, len(leased))
	for i := range leased {
		j := &leased[i]
		t, err := decodeTags(tags[i])
		if err != nil {
			return nil, fmt.Errorf("sqlite: lease: job %d: %w", j.ID, err)
		}
		j.Tags = t
		j.TenantID = p.TenantID
		j.Queue = p.Queue
		j.State = store.StateRunning
		j.StartedAt = started
		j.LeaseExpiresAt = expires
		j.LeasedBy = p.LeasedBy
		jobs[i] = j
	}
	return jobs, nil
}

// markLeased moves the jobs just read to running with their new tokens.
func (t *wtx) markLeased(jobs []store.Job, expUS, nowUS int64, leasedBy any) error {
	for lo := 0; lo < len(jobs); {
		k := min(bits.Len(uint(len(jobs)-lo))-1, chunkSizes-1)
		size := 1 << k
		args := t.w.args[:0]
		for i := lo; i < lo+size; i++ {
			args = append(args, jobs[i].ID, jobs[i].LeaseToken)
		}
		args = append(args, expUS, nowUS, leasedBy)
		n, err := t.execN(stLeaseMark0+stmtID(k), args...)
		clear(args)
		t.w.args = args[:0]
		if err != nil {
			return err
		}
		if n != int64(size) {
			// Only the writer changes jobs, and it read these as available
			// in this very transaction.
			return fmt.Errorf("leased %d of %d jobs read as available", n, size)
		}
		lo += size
	}
	return nil
}

// newToken returns a random non-zero lease token.
func newToken() int64 {
	for {
		if tok := rand.Int64(); tok != 0 {
			return tok
		}
	}
}

// Complete applies completions in one transaction. Runs of OutcomeSucceeded
// (nearly all completions) are applied with multi-row statements.
func (s *Store) Complete(ctx context.Context, cs []store.Completion) ([]error, error) {
	for i := range cs {
		if cs[i].Outcome < store.OutcomeSucceeded || cs[i].Outcome > store.OutcomeCancelled {
			return nil, fmt.Errorf("sqlite: complete: completion %d: unknown outcome %d", i, cs[i].Outcome)
		}
	}
	res := make([]error, len(cs))
	if len(cs) == 0 {
		return res, nil
	}
	// The multi-row statements' values, bound here rather than on the writer.
	rows := make([]any, len(cs)*succeedCols)
	for i := range cs {
		if c := &cs[i]; c.Outcome == store.OutcomeSucceeded {
			r := rows[i*succeedCols : (i+1)*succeedCols : (i+1)*succeedCols]
			r[0], r[1], r[2], r[3] = c.Lease.JobID, int64(c.Lease.Attempt), c.Lease.Token, nullText(c.Result)
		}
	}
	err := s.w.do(ctx, true, func(t *wtx) error {
		var at any // the error time, formatted once per op if needed
		for i := 0; i < len(cs); {
			if cs[i].Outcome != store.OutcomeSucceeded {
				if err := t.completeOne(&cs[i], &res[i], &at); err != nil {
					return err
				}
				i++
				continue
			}
			j := i + 1
			for j < len(cs) && cs[j].Outcome == store.OutcomeSucceeded {
				j++
			}
			if err := t.succeed(cs, rows, res, i, j); err != nil {
				return err
			}
			i = j
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: complete: %w", err)
	}
	return res, nil
}

// succeed completes cs[lo:hi], all OutcomeSucceeded, in chunks. A chunk
// that changes fewer rows than it has (a stale lease, or one job twice) is
// rolled back and redone one job at a time, which tells which were stale.
func (t *wtx) succeed(cs []store.Completion, rows []any, res []error, lo, hi int) error {
	for lo < hi {
		k := min(bits.Len(uint(hi-lo))-1, chunkSizes-1)
		size := 1 << k
		if size == 1 {
			if err := t.completeOne(&cs[lo], &res[lo], nil); err != nil {
				return err
			}
			lo++
			continue
		}
		args := append(t.w.args[:0], rows[lo*succeedCols:(lo+size)*succeedCols]...)
		args = append(args, t.nowUS)
		if _, err := t.exec(stChunkSavepoint); err != nil {
			return err
		}
		n, err := t.execN(stSucceed0+stmtID(k), args...)
		clear(args)
		t.w.args = args[:0]
		if err != nil {
			return err
		}
		if n != int64(size) {
			if _, err := t.exec(stChunkRollbackTo); err != nil {
				return err
			}
		}
		if _, err := t.exec(stChunkRelease); err != nil {
			return err
		}
		for r := lo; r < lo+size; r++ {
			if n == int64(size) {
				res[r] = nil
			} else if err := t.completeOne(&cs[r], &res[r], nil); err != nil {
				return err
			}
		}
		lo += size
	}
	return nil
}

// completeOne applies one completion and sets *res to nil or
// ErrStaleLease. *at caches the time errors are recorded with.
func (t *wtx) completeOne(c *store.Completion, res *error, at *any) error {
	if at == nil {
		at = new(any)
	}
	l := c.Lease
	var (
		n   int64
		err error
	)
	switch c.Outcome {
	case store.OutcomeSucceeded:
		n, err = t.execN(stCompleteSucceeded, t.nowUS, nullText(c.Result), l.JobID, int64(l.Attempt), l.Token)
	case store.OutcomeCancelled:
		n, err = t.execN(stCompleteCancelled, t.nowUS, l.JobID, int64(l.Attempt), l.Token)
	case store.OutcomeDead:
		if *at == nil {
			*at = t.errorTime()
		}
		n, err = t.execN(stCompleteDead, *at, c.Error, t.nowUS, l.JobID, int64(l.Attempt), l.Token)
	case store.OutcomeFailed:
		if *at == nil {
			*at = t.errorTime()
		}
		var state string
		var runAt sqlInt
		err = t.queryRow(stCompleteFailed, *at, c.Error, t.nowUS+c.RetryIn.Microseconds(), t.nowUS,
			l.JobID, int64(l.Attempt), l.Token).Scan(&state, &runAt)
		if err == nil {
			n = 1
			if state == store.StateRetryable {
				t.notify(store.Notification{Kind: store.NotifyScheduled, At: fromMicros(int64(runAt))})
			}
		} else if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	case store.OutcomeSnoozed, store.OutcomeReleased:
		state, runAt := store.StateAvailable, t.nowUS
		if c.Outcome == store.OutcomeSnoozed && c.Delay > 0 {
			state, runAt = store.StateScheduled, t.nowUS+c.Delay.Microseconds()
		}
		var tenant, queue string
		err = t.queryRow(stCompleteSnoozed, state, runAt, l.JobID, int64(l.Attempt), l.Token).Scan(&tenant, &queue)
		if err == nil {
			n = 1
			if state == store.StateScheduled {
				t.notify(store.Notification{Kind: store.NotifyScheduled, At: fromMicros(runAt)})
			} else {
				t.notify(store.Notification{Kind: store.NotifyInsert, TenantID: tenant, Queue: queue})
			}
		} else if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("job %d: %w", l.JobID, err)
	}
	if n == 0 {
		*res = store.ErrStaleLease
	} else {
		*res = nil
	}
	return nil
}

// errorTime is the "at" of an error recorded now.
func (t *wtx) errorTime() any {
	return t.now.UTC().Format(time.RFC3339Nano)
}

// Heartbeat extends leases; the stale ones are returned. Like leases,
// heartbeats are not durable on their own.
func (s *Store) Heartbeat(ctx context.Context, leases []store.Lease, extend time.Duration) ([]store.Lease, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	var stale []store.Lease
	err := s.w.do(ctx, false, func(t *wtx) error {
		stale = stale[:0]
		exp := t.nowUS + extend.Microseconds()
		for _, l := range leases {
			n, err := t.execN(stHeartbeat, exp, l.JobID, int64(l.Attempt), l.Token)
			if err != nil {
				return fmt.Errorf("job %d: %w", l.JobID, err)
			}
			if n == 0 {
				stale = append(stale, l)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: heartbeat: %w", err)
	}
	return stale, nil
}

// SetProgress stores progress on a running job, fenced by its lease.
func (s *Store) SetProgress(ctx context.Context, l store.Lease, progress []byte) error {
	err := s.w.do(ctx, true, func(t *wtx) error {
		n, err := t.execN(stSetProgress, nullText(progress), l.JobID, int64(l.Attempt), l.Token)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrStaleLease
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set progress of job %d: %w", l.JobID, err)
	}
	return nil
}

// Cancel moves a live job to cancelled.
func (s *Store) Cancel(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	return s.finishLive(ctx, "cancel", tenantID, id, store.StateCancelled)
}

// Discard moves a live job to dead.
func (s *Store) Discard(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	return s.finishLive(ctx, "discard", tenantID, id, store.StateDead)
}

func (s *Store) finishLive(ctx context.Context, verb, tenantID string, id int64, state string) (*store.Job, error) {
	var job *store.Job
	err := s.w.do(ctx, true, func(t *wtx) error {
		j, err := t.jobByID(tenantID, id)
		if err != nil {
			return err
		}
		if isFinal(j.State) {
			job = j
			return fmt.Errorf("%w: job %d is %s", store.ErrConflict, id, j.State)
		}
		job, err = scanJob(t.queryRow(stFinishLive, state, t.nowUS, id))
		if err != nil {
			return err
		}
		if j.State == store.StateRunning {
			t.notify(store.Notification{Kind: store.NotifyCancel, TenantID: j.TenantID, Queue: j.Queue, JobID: id})
		}
		return nil
	})
	if err != nil {
		return job, fmt.Errorf("sqlite: %s: %w", verb, err)
	}
	return job, nil
}

// Delete removes a job that is not running.
func (s *Store) Delete(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	var job *store.Job
	err := s.w.do(ctx, true, func(t *wtx) error {
		j, err := t.jobByID(tenantID, id)
		if err != nil {
			return err
		}
		job = j
		if j.State == store.StateRunning {
			return fmt.Errorf("%w: job %d is running; cancel it first", store.ErrConflict, id)
		}
		_, err = t.exec(stDeleteJob, id)
		return err
	})
	if err != nil {
		return job, fmt.Errorf("sqlite: delete: %w", err)
	}
	return job, nil
}

// Retry makes a dead or cancelled job available now.
func (s *Store) Retry(ctx context.Context, tenantID string, id int64) (*store.Job, error) {
	var job *store.Job
	err := s.w.do(ctx, true, func(t *wtx) error {
		j, err := t.jobByID(tenantID, id)
		if err != nil {
			return err
		}
		if j.State != store.StateDead && j.State != store.StateCancelled {
			job = j
			return fmt.Errorf("%w: job %d is %s", store.ErrConflict, id, j.State)
		}
		if j.UniqueKey != "" {
			var holders sqlInt
			if err := t.queryRow(stUniqueHolder, tenantID, j.UniqueKey, id).Scan(&holders); err != nil {
				return err
			}
			if holders > 0 {
				job = j
				return fmt.Errorf("%w: job %d: unique key %q is held by another live job", store.ErrConflict, id, j.UniqueKey)
			}
		}
		job, err = scanJob(t.queryRow(stRetry, t.nowUS, id))
		if err != nil {
			return err
		}
		t.notify(store.Notification{Kind: store.NotifyInsert, TenantID: job.TenantID, Queue: job.Queue})
		return nil
	})
	if err != nil {
		return job, fmt.Errorf("sqlite: retry: %w", err)
	}
	return job, nil
}

// jobByID reads a job in the write transaction; ErrNotFound if it is not
// the tenant's.
func (t *wtx) jobByID(tenantID string, id int64) (*store.Job, error) {
	j, err := scanJob(t.queryRow(stJobByID, id, tenantID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, store.ErrNotFound)
	}
	return j, err
}
