package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Recording events is the hot path of event and webhook ingest: a request
// each, each recording one event and perhaps a job or two its rules made.
// Run one by one, every event would cost the writer a savepoint and a
// statement per row. Instead RecordEvents calls that arrive while the
// writer is busy wait together and are recorded by one writer op, with one
// multi-row INSERT for all their jobs and one for all their events
// (BenchmarkRecordEvents: a quarter less writer time for an event with a
// job, an eighth less for one without).
//
// The merged op assumes no event is a repeat, which is the common case, and
// finds out for free: the events INSERT skips a repeat (ON CONFLICT DO
// NOTHING) and so changes fewer rows than it was given. Then the op fails
// with errRepeat, the writer undoes it, and it runs again looking each event
// up first (probe). Should that fail too, each call runs alone, so that one
// call's failure is not another's.

// errRepeat says that an event of a merged recording was recorded before, or
// twice in it.
var errRepeat = errors.New("an event is a repeat")

// eventBatcher gathers the RecordEvents calls waiting for the writer.
type eventBatcher struct {
	w       *writer
	mu      sync.Mutex
	pending []*eventCall
	// queued is true while a flush's op waits for the writer; that op takes
	// every call pending when it starts.
	queued bool
}

// eventCall is one RecordEvents call: its records, prepared off the writer,
// and, once done is closed, its outcome.
type eventCall struct {
	recs []store.EventRecord
	// plans are the jobs of each record, nil for a record without jobs,
	// whose dispatch is already encoded in dispatches.
	plans      []*insertPlan
	dispatches [][]byte
	taken      bool // by an op; guarded by eventBatcher.mu
	out        []store.RecordedEvent
	err        error
	done       chan struct{}
}

// RecordEvents implements store.Events.
func (s *Store) RecordEvents(ctx context.Context, recs []store.EventRecord) ([]store.RecordedEvent, error) {
	if len(recs) == 0 {
		return []store.RecordedEvent{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	// The jobs' rows and the outcomes of events without jobs are prepared
	// here, on the caller's goroutine: the writer is the serial resource.
	now := time.Now()
	c := &eventCall{recs: recs, plans: make([]*insertPlan, len(recs)), dispatches: make([][]byte, len(recs)),
		done: make(chan struct{})}
	for i := range recs {
		var err error
		if len(recs[i].Jobs) == 0 {
			c.dispatches[i], err = store.EncodeDispatch(recs[i].Outcomes, nil)
		} else {
			c.plans[i], err = planInsert(recs[i].Jobs, now)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: record events: event %d: %w", i, err)
		}
	}
	if err := s.events.record(ctx, c); err != nil {
		return nil, fmt.Errorf("sqlite: record events: %w", err)
	}
	// The jobs' results are built here, off the writer.
	for i, p := range c.plans {
		if p != nil && !c.out[i].Existing {
			c.out[i].Jobs = p.results()
		}
	}
	return c.out, nil
}

// record adds c to the pending calls, makes sure an op will take it, and
// waits for its outcome. A caller whose ctx ends before an op took its call
// withdraws it; after, the op runs to the end and the caller waits, as for
// any writer op.
func (b *eventBatcher) record(ctx context.Context, c *eventCall) error {
	b.mu.Lock()
	b.pending = append(b.pending, c)
	flush := !b.queued
	b.queued = true
	b.mu.Unlock()
	if flush {
		go b.flush()
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !c.taken {
		b.pending = removeCall(b.pending, c)
		b.mu.Unlock()
		return ctx.Err()
	}
	b.mu.Unlock()
	<-c.done
	return c.err
}

func removeCall(cs []*eventCall, c *eventCall) []*eventCall {
	for i, x := range cs {
		if x == c {
			return append(cs[:i], cs[i+1:]...)
		}
	}
	return cs
}

// maxMergedEvents bounds the events one op records, so that callers
// sending large batches (a thousand CloudEvents a request) at once do not
// make one transaction of them all: the calls beyond it go to the next op.
const maxMergedEvents = 4096

// take hands pending calls, up to maxMergedEvents events (and at least one
// call), to the op that runs now; calls left over or arriving from here on
// queue another.
func (b *eventBatcher) take() []*eventCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, events := 0, 0
	for n < len(b.pending) && (n == 0 || events+len(b.pending[n].recs) <= maxMergedEvents) {
		b.pending[n].taken = true
		events += len(b.pending[n].recs)
		n++
	}
	cs := b.pending[:n:n]
	if b.pending = b.pending[n:]; len(b.pending) == 0 {
		b.pending = nil
	}
	b.queued = b.pending != nil
	if b.queued {
		go b.flush()
	}
	return cs
}

// flush records the calls pending when its op starts in one op, and answers
// them. The op runs whatever the callers' contexts: a caller that gives up
// first has withdrawn its call.
func (b *eventBatcher) flush() {
	ctx := context.Background()
	var (
		calls []*eventCall
		ran   bool
	)
	err := b.w.do(ctx, true, func(t *wtx) error {
		calls, ran = b.take(), true
		return t.recordCalls(calls, false)
	})
	if !ran {
		// The op never ran (the store is closing): nothing took the calls.
		calls = b.take()
	}
	if errors.Is(err, errRepeat) {
		err = b.w.do(ctx, true, func(t *wtx) error { return t.recordCalls(calls, true) })
	}
	if err != nil && len(calls) > 1 && !errors.Is(err, ErrClosed) {
		// Each call in an op of its own, submitted together so that they
		// still share commits.
		for _, c := range calls {
			go func() {
				c.err = b.w.do(ctx, true, func(t *wtx) error { return t.recordCalls([]*eventCall{c}, true) })
				close(c.done)
			}()
		}
		return
	}
	for _, c := range calls {
		c.err = err
		close(c.done)
	}
}

// recordCalls records every event of calls with its jobs, and sets each
// call's out. With probe false it returns errRepeat if an event was recorded
// before, having written part of the calls: its op must be undone. With
// probe true it looks every event up first and answers a repeat with the
// stored event.
func (t *wtx) recordCalls(calls []*eventCall, probe bool) error {
	type key struct{ tenant, source, id string }
	var first map[key]*store.Event // probe: the first of each event in calls
	if probe {
		first = make(map[key]*store.Event)
	}
	var (
		news  []*store.Event // the events to insert, in order
		plans []*insertPlan  // the jobs of those that have any, in order
	)
	for _, c := range calls {
		c.out = make([]store.RecordedEvent, len(c.recs))
		for i := range c.recs {
			e := c.recs[i].Event // a copy, which becomes the recorded event
			if probe {
				k := key{e.TenantID, e.Source, e.EventID}
				if f, ok := first[k]; ok {
					c.out[i] = store.RecordedEvent{Event: f, Existing: true}
					continue
				}
				found, err := t.existingEventIfAny(&e, &c.out[i])
				if err != nil {
					return fmt.Errorf("event %d: %w", i, err)
				}
				if found {
					first[k] = c.out[i].Event
					continue
				}
			}
			e.ReceivedAt = fromMicros(t.nowUS)
			e.Time = fromMicros(micros(e.Time)) // as stored: microseconds, UTC
			if p := c.plans[i]; p != nil {
				plans = append(plans, p)
			} else {
				e.Dispatch = c.dispatches[i]
			}
			c.out[i] = store.RecordedEvent{Event: &e}
			news = append(news, &e)
			if probe {
				first[key{e.TenantID, e.Source, e.EventID}] = &e
			}
		}
	}
	if len(plans) > 0 {
		merged := mergePlans(plans)
		if err := merged.run(t); err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
		merged.scatter(plans)
		for _, c := range calls {
			for i, p := range c.plans {
				if p != nil && !c.out[i].Existing {
					var err error
					if c.out[i].Event.Dispatch, err = store.EncodeDispatch(c.recs[i].Outcomes, p.jobIDs()); err != nil {
						return fmt.Errorf("event %d: %w", i, err)
					}
				}
			}
		}
	}
	return t.insertEvents(news)
}

// jobIDs returns the plan's jobs as far as an event's outcomes name them,
// once run has inserted them.
func (pl *insertPlan) jobIDs() []store.InsertResult {
	jobs := make([]store.InsertResult, len(pl.ids))
	for k, id := range pl.ids {
		if j, ok := pl.existing[k]; ok {
			jobs[k] = store.InsertResult{Job: j, Existing: true}
		} else {
			jobs[k] = store.InsertResult{Job: &store.Job{ID: id}}
		}
	}
	return jobs
}

// insertEvents inserts es with as few multi-row INSERTs as possible (one for
// up to exactRows) and sets their ids. It returns errRepeat, having
// inserted part of them, if one was recorded before or comes twice.
func (t *wtx) insertEvents(es []*store.Event) error {
	args := t.w.args[:0]
	defer func() {
		clear(args) // let the bodies be collected
		t.w.args = args[:0]
	}()
	now := any(t.nowUS) // boxed once for every row
	for lo := 0; lo < len(es); {
		size := min(len(es)-lo, exactRows)
		args = args[:0]
		for _, e := range es[lo : lo+size] {
			args = append(args, e.TenantID, e.Source, e.EventID, e.Type, e.Subject, micros(e.Time), now,
				string(e.Body), string(e.Dispatch))
		}
		res, err := t.exec(stEvents0+stmtID(size-1), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != int64(size) {
			return errRepeat
		}
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		// As for jobs (insertRows): consecutive ids, in VALUES order.
		for r, e := range es[lo : lo+size] {
			e.ID = last - int64(size) + 1 + int64(r)
		}
		lo += size
	}
	return nil
}

// existingEventIfAny reads the recorded event with e's source and id into
// out, if there is one.
func (t *wtx) existingEventIfAny(e *store.Event, out *store.RecordedEvent) (bool, error) {
	stored, err := scanEvent(t.queryRow(stEventBySource, e.TenantID, e.Source, e.EventID))
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	*out = store.RecordedEvent{Event: stored, Existing: true}
	return true, nil
}
