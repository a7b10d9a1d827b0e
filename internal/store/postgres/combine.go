package postgres

import (
	"context"
	"sync"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// A commit is a round trip plus a WAL flush, and under HTTP ingest every
// enqueue is a one-job insert that would pay for one of its own. A combiner
// lets concurrent plain inserts (no unique keys) share a statement and its
// commit: each caller queues its jobs, and whoever gets one of the few
// flush slots inserts everything queued, its own and others', at once.
// With no contention a caller flushes its own insert at once, so nothing
// waits. (The same group commit the SQLite writer does.)
type combiner struct {
	slots chan struct{} // flushes in flight

	mu      sync.Mutex
	pending []*combined
}

// combinedFlushes is how many combined inserts may be in flight at once:
// two lets one commit while the next gathers.
const combinedFlushes = 2

// combined is one caller's insert in a combiner.
type combined struct {
	jobs  []store.InsertParams
	res   []store.InsertResult
	notes []store.Notification
	err   error
	done  chan struct{} // closed when res, notes and err are final
}

func newCombiner() *combiner {
	return &combiner{slots: make(chan struct{}, combinedFlushes)}
}

// insertCombined inserts plain jobs, sharing the statement and commit with
// concurrent callers. If ctx ends while the jobs are still queued they are
// withdrawn; once a flush has taken them the caller waits for its outcome,
// which is then final either way.
func (s *Store) insertCombined(ctx context.Context, jobs []store.InsertParams) ([]store.InsertResult, []store.Notification, error) {
	c := s.combiner
	me := &combined{jobs: jobs, done: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, me)
	c.mu.Unlock()
	for {
		select {
		case <-me.done:
			return me.res, me.notes, me.err
		case c.slots <- struct{}{}:
			c.mu.Lock()
			batch := c.pending
			c.pending = nil
			c.mu.Unlock()
			if len(batch) > 0 {
				// Others' jobs ride on this flush: it must not end with
				// this caller's ctx.
				s.flushCombined(context.WithoutCancel(ctx), batch)
			}
			<-c.slots
		case <-ctx.Done():
			c.mu.Lock()
			for i, p := range c.pending {
				if p == me {
					c.pending = append(c.pending[:i], c.pending[i+1:]...)
					c.mu.Unlock()
					return nil, nil, ctx.Err()
				}
			}
			c.mu.Unlock()
			<-me.done // taken by a flush: its outcome is final
			return me.res, me.notes, me.err
		}
	}
}

// flushCombined inserts the batch's jobs in one statement; if that fails,
// each caller's jobs go alone, so one caller's bad row fails only its own.
func (s *Store) flushCombined(ctx context.Context, batch []*combined) {
	if len(batch) == 1 {
		b := batch[0]
		b.res, b.notes, b.err = s.insert(ctx, s.pool, b.jobs, s.origin)
		close(b.done)
		return
	}
	n := 0
	for _, b := range batch {
		n += len(b.jobs)
	}
	all := make([]store.InsertParams, 0, n)
	for _, b := range batch {
		all = append(all, b.jobs...)
	}
	res, notes, err := s.insert(ctx, s.pool, all, s.origin)
	if err != nil {
		for _, b := range batch {
			b.res, b.notes, b.err = s.insert(ctx, s.pool, b.jobs, s.origin)
			close(b.done)
		}
		return
	}
	for i, b := range batch {
		b.res, res = res[:len(b.jobs):len(b.jobs)], res[len(b.jobs):]
		if i == 0 {
			b.notes = notes // published once, by the first caller
		}
		close(b.done)
	}
}
