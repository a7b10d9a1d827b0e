package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// completer records outcomes in batches: it takes whatever completions are
// queued when the previous batch finished, so under load one store call
// carries hundreds of them, and at low load each is written at once.
type completer struct {
	r    *Runner
	in   chan outcome
	done chan struct{}

	mu      sync.Mutex
	stopCtx context.Context // set by stop: how long to keep retrying

	inMu   sync.RWMutex // held for reading by senders, for writing by stop
	closed bool
}

// outcome is a completion with the job it ends, for the event that
// announces it once recorded (nil: announce nothing).
type outcome struct {
	c   store.Completion
	job *store.Job
}

func newCompleter(r *Runner) *completer {
	return &completer{
		r:    r,
		in:   make(chan outcome, 4*r.cfg.CompleteBatch),
		done: make(chan struct{}),
	}
}

func (c *completer) start() { go c.loop() }

// add queues a completion. It blocks when the queue is full, which slows the
// workers down to the store's pace instead of growing memory.
//
// A handler that ignored cancellation may return after shutdown; its outcome
// is dropped (its job was already released).
func (c *completer) add(comp store.Completion, job *store.Job) {
	c.inMu.RLock()
	defer c.inMu.RUnlock()
	if c.closed {
		c.r.log.Warn("queue: outcome arrived after shutdown; the job was released", "job", comp.Lease.JobID)
		return
	}
	c.in <- outcome{comp, job}
}

// stop flushes what is queued, retrying failed writes until ctx ends.
func (c *completer) stop(ctx context.Context) error {
	c.mu.Lock()
	c.stopCtx = ctx
	c.mu.Unlock()
	c.inMu.Lock()
	c.closed = true
	close(c.in)
	c.inMu.Unlock()
	<-c.done
	if ctx.Err() != nil && len(c.in) > 0 {
		return errors.New("queue: shutdown deadline passed with completions unrecorded; those jobs will be rescued when their leases expire")
	}
	return nil
}

func (c *completer) loop() {
	defer close(c.done)
	batch := make([]store.Completion, 0, c.r.cfg.CompleteBatch)
	jobs := make([]*store.Job, 0, c.r.cfg.CompleteBatch)
	window := time.NewTimer(0)
	<-window.C
	for first := range c.in {
		batch = append(batch[:0], first.c)
		jobs = append(jobs[:0], first.job)
		// Collect for up to CompleteDelay: at moderate rates this turns one
		// statement (and one commit) per job into one per few jobs, and it
		// delays only the recording of outcomes, never the start of a job.
		window.Reset(c.r.cfg.CompleteDelay)
	collect:
		for len(batch) < c.r.cfg.CompleteBatch {
			select {
			case o, ok := <-c.in:
				if !ok {
					break collect
				}
				batch = append(batch, o.c)
				jobs = append(jobs, o.job)
			case <-window.C:
				break collect
			}
		}
		window.Stop()
		ok := c.flush(batch, jobs)
		clear(jobs) // let finished jobs be collected
		if !ok {
			return
		}
	}
}

// flush writes one batch, retrying with backoff while the store fails. A
// completion is never dropped while the runner lives: losing it would only
// re-run the job after its lease expires, but that wastes work and time.
// It returns false if it gave up because shutdown's deadline passed.
func (c *completer) flush(batch []store.Completion, jobs []*store.Job) bool {
	backoff := 50 * time.Millisecond
	for {
		// The outcomes' events keep their place before whatever the
		// recorded outcomes lead to (a retry's next start).
		release := c.r.holdEvents()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		results, err := c.r.cfg.Store.Complete(ctx, batch)
		cancel()
		if err == nil {
			var evs []Event
			if c.r.cfg.Events != nil {
				evs = make([]Event, 0, len(batch))
			}
			now := time.Now()
			for i, res := range results {
				if res != nil {
					c.r.cfg.Metrics.stale()
					c.r.log.Debug("queue: completion rejected", "job", batch[i].Lease.JobID, "err", res)
					continue
				}
				if evs != nil && jobs[i] != nil {
					if ev, ok := outcomeEvent(jobs[i], &batch[i], now); ok {
						evs = append(evs, ev)
					}
				}
			}
			release(evs)
			return true
		}
		release(nil)
		c.r.log.Error("queue: record completions", "err", err, "count", len(batch))
		c.mu.Lock()
		stopCtx := c.stopCtx
		c.mu.Unlock()
		var giveUp <-chan struct{}
		if stopCtx != nil {
			giveUp = stopCtx.Done()
		}
		select {
		case <-time.After(backoff):
		case <-giveUp:
			return false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
