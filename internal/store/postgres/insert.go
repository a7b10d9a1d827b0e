package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// maxUniqueRounds bounds the retries of unique keys whose conflicting job
// was committed after our statement's snapshot, or finished meanwhile. Each
// round resolves every key that did not race again; more than a handful of
// rounds means something is wrong.
const maxUniqueRounds = 100

// Insert implements store.Store. Jobs without a unique key go in one
// multi-row statement, which commits on its own; with unique keys the work
// needs several statements and runs in a transaction.
func (s *Store) Insert(ctx context.Context, jobs []store.InsertParams) ([]store.InsertResult, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	var (
		res   []store.InsertResult
		notes []store.Notification
		err   error
	)
	if !hasUniqueKey(jobs) {
		res, notes, err = s.insert(ctx, s.pool, jobs, s.origin)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			res, notes, err = s.insert(ctx, tx, jobs, s.origin)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: insert: %w", err)
	}
	s.publish(notes...)
	return res, nil
}

// InsertTx inserts jobs inside the caller's transaction tx, on this Store's
// schema: the jobs exist if and only if the caller commits. Their
// notifications are sent with pg_notify in tx, so PostgreSQL delivers them
// when tx commits and drops them if it rolls back; for that reason they are
// not delivered locally, and reach this process through its listener.
func (s *Store) InsertTx(ctx context.Context, tx pgx.Tx, jobs []store.InsertParams) ([]store.InsertResult, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	res, _, err := s.insert(ctx, tx, jobs, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: insert: %w", err)
	}
	return res, nil
}

// inlineChannel is the channel the insert statements notify on: none when
// the Store publishes after commit (origin set), its channel inside a
// caller's transaction, where only a commit may announce the jobs.
func (s *Store) inlineChannel(origin string) string {
	if origin != "" {
		return ""
	}
	return s.channel
}

func hasUniqueKey(jobs []store.InsertParams) bool {
	for i := range jobs {
		if jobs[i].UniqueKey != "" {
			return true
		}
	}
	return false
}

// insert does the work of Insert on q, which must be a transaction when any
// job has a unique key. It returns the notifications its statements sent.
// origin marks them in their payload: the Store's own origin for
// notifications it delivers locally after commit (its listener then drops
// its copy), "" for those only the listener may deliver.
func (s *Store) insert(ctx context.Context, q querier, jobs []store.InsertParams, origin string) ([]store.InsertResult, []store.Notification, error) {
	res := make([]store.InsertResult, len(jobs))
	var plain, unique []int // indexes into jobs
	for i := range jobs {
		if jobs[i].UniqueKey == "" {
			plain = append(plain, i)
		} else {
			unique = append(unique, i)
		}
	}
	var notes noteSet
	if len(plain) > 0 {
		if err := s.insertPlain(ctx, q, origin, jobs, plain, res, &notes); err != nil {
			return nil, nil, err
		}
	}
	if len(unique) > 0 {
		if err := s.insertUnique(ctx, q, origin, jobs, unique, res, &notes); err != nil {
			return nil, nil, err
		}
	}
	return res, notes.list, nil
}

// insertArrays are the array parameters $3..$15 of the insert statements.
type insertArrays struct {
	tenant, queue, kind []string
	args                [][]byte
	priority            []int16
	maxAttempts         []int32
	runAt               []pgtype.Timestamptz
	delayUS, timeoutMS  []int64
	tags                []string
	tagLo, tagHi        []int32
	uniqueKey           []string
}

func buildArrays(jobs []store.InsertParams, idx []int, withUnique bool) *insertArrays {
	n := len(idx)
	a := &insertArrays{
		tenant:      make([]string, n),
		queue:       make([]string, n),
		kind:        make([]string, n),
		args:        make([][]byte, n),
		priority:    make([]int16, n),
		maxAttempts: make([]int32, n),
		runAt:       make([]pgtype.Timestamptz, n),
		delayUS:     make([]int64, n),
		timeoutMS:   make([]int64, n),
	}
	if withUnique {
		a.uniqueKey = make([]string, n)
	}
	anyTags := false
	for _, i := range idx {
		if len(jobs[i].Tags) > 0 {
			anyTags = true
			break
		}
	}
	if anyTags {
		a.tagLo = make([]int32, n)
		a.tagHi = make([]int32, n)
	}
	for k, i := range idx {
		p := &jobs[i]
		a.tenant[k] = p.TenantID
		a.queue[k] = p.Queue
		a.kind[k] = p.Kind
		a.args[k] = p.Args
		if p.Args == nil {
			a.args[k] = emptyObject
		}
		a.priority[k] = int16(p.Priority)
		a.maxAttempts[k] = int32(p.MaxAttempts)
		if !p.RunAt.IsZero() {
			a.runAt[k] = pgtype.Timestamptz{Time: p.RunAt, Valid: true}
		}
		a.delayUS[k] = p.Delay.Microseconds()
		a.timeoutMS[k] = p.Timeout.Milliseconds()
		if withUnique {
			a.uniqueKey[k] = p.UniqueKey
		}
		if anyTags {
			// PostgreSQL arrays are 1-based; [lo:hi] with hi < lo is empty.
			a.tagLo[k] = int32(len(a.tags) + 1)
			a.tags = append(a.tags, p.Tags...)
			a.tagHi[k] = int32(len(a.tags))
		}
	}
	return a
}

var emptyObject = []byte("{}")

func nonNilTags(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// params returns the statement arguments; a nil slice encodes as a NULL array,
// which unnest pads with NULLs (the tags expression turns those into '{}').
func (a *insertArrays) params(channel, origin string) []any {
	var uk any = a.uniqueKey
	if a.uniqueKey == nil {
		uk = nil
	}
	var tags, lo, hi any = a.tags, a.tagLo, a.tagHi
	if a.tagLo == nil {
		tags, lo, hi = nil, nil, nil
	}
	return []any{channel, origin, a.tenant, a.queue, a.kind, a.args, a.priority, a.maxAttempts,
		a.runAt, a.delayUS, a.timeoutMS, tags, lo, hi, uk}
}

// insertPlain inserts jobs[idx] (no unique keys) with one statement.
func (s *Store) insertPlain(ctx context.Context, q querier, origin string, jobs []store.InsertParams, idx []int, res []store.InsertResult, notes *noteSet) error {
	a := buildArrays(jobs, idx, false)
	type ret struct {
		id        int64
		state     string
		runAt     time.Time
		createdAt time.Time
	}
	out := make([]ret, 0, len(idx))
	var r ret
	if len(idx) == 1 && origin != "" {
		// A single enqueue, the latency path: a plain one-row INSERT costs
		// the server half of what the unnest statement does.
		p := &jobs[idx[0]]
		err := q.QueryRow(ctx, sqlInsertOne, p.TenantID, p.Queue, p.Kind, a.args[0], a.priority[0],
			a.maxAttempts[0], a.runAt[0], a.delayUS[0], a.timeoutMS[0], nonNilTags(p.Tags),
		).Scan(&r.id, &r.state, &r.runAt, &r.createdAt)
		if err != nil {
			return err
		}
		out = append(out, r)
	} else {
		rows, err := q.Query(ctx, sqlInsert, a.params(s.inlineChannel(origin), origin)...)
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, []any{&r.id, &r.state, &r.runAt, &r.createdAt}, func() error {
			out = append(out, r)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(out) != len(idx) {
		return fmt.Errorf("inserted %d rows for %d jobs", len(out), len(idx))
	}
	// The identity hands out ids in the statement's row order, which is the
	// input order (ORDER BY ord), so sorting by id restores it.
	slices.SortFunc(out, func(x, y ret) int { return cmp.Compare(x.id, y.id) })
	for k, i := range idx {
		p := &jobs[i]
		o := &out[k]
		j := &store.Job{
			ID:          o.id,
			TenantID:    p.TenantID,
			Queue:       p.Queue,
			Kind:        p.Kind,
			Args:        a.args[k],
			Priority:    p.Priority,
			State:       o.state,
			MaxAttempts: p.MaxAttempts,
			RunAt:       o.runAt.UTC(),
			CreatedAt:   o.createdAt.UTC(),
			Timeout:     time.Duration(a.timeoutMS[k]) * time.Millisecond,
			Tags:        p.Tags,
			Errors:      emptyArray,
		}
		if j.Tags == nil {
			j.Tags = []string{}
		}
		res[i] = store.InsertResult{Job: j}
		notes.add(j.TenantID, j.Queue, j.State, j.RunAt)
	}
	return nil
}

var emptyArray = []byte("[]")

// uniqueID is a unique key's identity: keys are unique per tenant.
type uniqueID struct{ tenant, key string }

// insertUnique inserts jobs[idx] (all with unique keys) or finds the live
// jobs holding their keys. q is a transaction.
func (s *Store) insertUnique(ctx context.Context, q querier, origin string, jobs []store.InsertParams, idx []int, res []store.InsertResult, notes *noteSet) error {
	// The first job of each key is the one we try to insert; later ones in
	// this call get its outcome, as Existing. Sorting by key makes concurrent
	// callers take the index's key locks in one order, so they cannot
	// deadlock on each other's uncommitted rows.
	first := make(map[uniqueID]int, len(idx)) // key -> index into jobs
	var todo []int
	for _, i := range idx {
		id := uniqueID{jobs[i].TenantID, jobs[i].UniqueKey}
		if _, ok := first[id]; !ok {
			first[id] = i
			todo = append(todo, i)
		}
	}
	slices.SortFunc(todo, func(x, y int) int {
		if c := cmp.Compare(jobs[x].TenantID, jobs[y].TenantID); c != 0 {
			return c
		}
		return cmp.Compare(jobs[x].UniqueKey, jobs[y].UniqueKey)
	})

	for round := 0; len(todo) > 0; round++ {
		if round == maxUniqueRounds {
			return errors.New("unique keys kept racing with concurrent inserts")
		}
		a := buildArrays(jobs, todo, true)
		rows, err := q.Query(ctx, sqlInsertUnique, a.params(s.inlineChannel(origin), origin)...)
		if err != nil {
			return err
		}
		var (
			js       jobScan
			inserted bool
		)
		got := make(map[uniqueID]bool, len(todo))
		_, err = pgx.ForEachRow(rows, js.dests(&inserted), func() error {
			j := js.result()
			js = jobScan{}
			id := uniqueID{j.TenantID, j.UniqueKey}
			i, ok := first[id]
			if !ok || got[id] {
				return fmt.Errorf("unexpected row for unique key %q", j.UniqueKey)
			}
			got[id] = true
			res[i] = store.InsertResult{Job: j, Existing: !inserted}
			if inserted {
				notes.add(j.TenantID, j.Queue, j.State, j.RunAt)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// A key with no row conflicted with a job this statement could not
		// see (committed after its snapshot) or that finished meanwhile; a
		// new statement has a new snapshot.
		next := todo[:0]
		for _, i := range todo {
			if !got[uniqueID{jobs[i].TenantID, jobs[i].UniqueKey}] {
				next = append(next, i)
			}
		}
		todo = next
	}
	for _, i := range idx {
		f := first[uniqueID{jobs[i].TenantID, jobs[i].UniqueKey}]
		if f != i {
			j := *res[f].Job // a copy: callers may modify what they get
			res[i] = store.InsertResult{Job: &j, Existing: true}
		}
	}
	return nil
}
