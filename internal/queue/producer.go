package queue

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// producer owns one queue of one tenant: a fetch loop that leases jobs into a channel and a
// pool of worker goroutines that run them. The pool is sized to the queue's
// concurrency and changes only when that does, so no goroutine is spawned
// per job.
type producer struct {
	r      *Runner
	tenant string
	queue  string
	base   int // this node's configured concurrency for the queue

	// limit is the effective concurrency: the queue's stored override, or
	// base. Written by the fetch loop, read by workers deciding to retire.
	limit   atomic.Int64
	workers atomic.Int64    // worker goroutines alive; kept ≥ limit
	jobs    chan *store.Job // leased, not yet started
	running atomic.Int64    // leased and not finished; ≤ limit
	paused  bool            // owned by the fetch loop
	started atomic.Bool

	wake         chan struct{} // jobs may have arrived
	slotFreed    chan struct{} // a worker finished a job
	queueChanged chan struct{} // the queue's settings may have changed
}

func newProducer(r *Runner, tenant, queue string, concurrency int) *producer {
	p := &producer{
		r:            r,
		tenant:       tenant,
		queue:        queue,
		base:         concurrency,
		jobs:         make(chan *store.Job, concurrency),
		wake:         make(chan struct{}, 1),
		slotFreed:    make(chan struct{}, 1),
		queueChanged: make(chan struct{}, 1),
	}
	p.limit.Store(int64(concurrency))
	return p
}

func (p *producer) start() {
	if !p.started.CompareAndSwap(false, true) {
		return
	}
	p.r.fetchWG.Add(1)
	go p.fetchLoop()
}

// grow starts workers until there are as many as the limit. Only the fetch
// loop calls it, before the jobs channel can close.
func (p *producer) grow() {
	for p.workers.Load() < p.limit.Load() {
		p.workers.Add(1)
		p.r.workerWG.Add(1)
		go p.work()
	}
}

// retire reports whether this worker should exit because the limit was
// lowered; it keeps at least limit workers alive.
func (p *producer) retire() bool {
	for {
		w := p.workers.Load()
		if w <= p.limit.Load() {
			return false
		}
		if p.workers.CompareAndSwap(w, w-1) {
			return true
		}
	}
}

// work runs jobs until the channel closes at shutdown or the pool shrinks.
// Jobs still buffered once fetching stopped are released instead of started.
func (p *producer) work() {
	defer p.r.workerWG.Done()
	for job := range p.jobs {
		select {
		case <-p.r.stopFetch:
			p.r.completer.add(store.Completion{Lease: leaseOf(job), Outcome: store.OutcomeReleased}, job)
		default:
			p.r.execute(job)
		}
		p.running.Add(-1)
		signal(p.slotFreed)
		if p.retire() {
			return
		}
	}
	p.workers.Add(-1)
}

func (p *producer) fetchLoop() {
	defer p.r.fetchWG.Done()
	poll := newIdlePoll(p.r.cfg.PollInterval)
	defer poll.stop()
	var retry *time.Timer // backoff after a store error
	var retryC <-chan time.Time
	backoff := 10 * time.Millisecond
	// The queue's settings decide whether and how much to fetch: read them
	// before the first fetch, retrying until the store answers.
	for {
		err := p.refreshSettings()
		if err == nil {
			break
		}
		p.r.log.Error("queue: read settings", "tenant", p.tenant, "queue", p.queue, "err", err)
		select {
		case <-p.r.stopFetch:
			return
		case <-time.After(backoff):
			backoff = min(backoff*2, 5*time.Second)
		}
	}
	backoff = 10 * time.Millisecond
	more := true    // jobs may be waiting: fetch when a slot is free
	polled := false // this fetch is the fallback poll's
	for {
		if more && !p.paused && retryC == nil {
			free := int(p.limit.Load() - p.running.Load())
			if free > 0 {
				limit := min(free, p.r.cfg.FetchBatch)
				n, err := p.fetch(limit)
				switch {
				case err != nil:
					p.r.log.Error("queue: fetch", "tenant", p.tenant, "queue", p.queue, "err", err)
					retry = time.NewTimer(backoff)
					retryC = retry.C
					backoff = min(backoff*2, 5*time.Second)
				default:
					backoff = 10 * time.Millisecond
					if n > 0 || !polled {
						poll.active()
					} else {
						poll.idle()
					}
					more = n == limit
					if more && p.running.Load() < p.limit.Load() {
						polled = false
						continue
					}
				}
			}
		}
		polled = false
		select {
		case <-p.r.stopFetch:
			if retry != nil {
				retry.Stop()
			}
			return
		case <-p.wake:
			more = true
		case <-poll.C():
			poll.fired()
			if p.paused {
				// A resume announced by a process whose notifications
				// cannot reach this one shows up here.
				p.logRefreshError(p.refreshSettings())
			}
			more, polled = true, true
		case <-p.slotFreed:
		case <-retryC:
			retryC = nil
		case <-p.queueChanged:
			p.logRefreshError(p.refreshSettings())
			more = true
		}
	}
}

func (p *producer) fetch(limit int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jobs, err := p.r.cfg.Store.Lease(ctx, store.LeaseParams{
		TenantID: p.tenant,
		Queue:    p.queue,
		Limit:    limit,
		LeasedBy: p.r.cfg.NodeID,
		Duration: p.r.cfg.LeaseDuration,
	})
	if err != nil {
		return 0, err
	}
	p.running.Add(int64(len(jobs)))
	// The attempts started when the lease committed (the jobs are running
	// now): announced together, before any worker can run them.
	if p.r.cfg.Events != nil && len(jobs) > 0 {
		evs := make([]Event, len(jobs))
		for i, j := range jobs {
			evs[i] = JobEvent(EventJobStarted, j)
		}
		p.r.cfg.Events.Add(evs...)
	}
	for _, j := range jobs {
		// Blocks only while workers take jobs: there are at least limit
		// workers, and at most limit jobs leased and unfinished.
		p.jobs <- j
	}
	return len(jobs), nil
}

// refreshSettings reads the queue's paused flag and concurrency override and
// resizes the worker pool to match.
func (p *producer) refreshSettings() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qs, err := p.r.cfg.Store.QueueSettings(ctx, p.tenant, p.queue)
	if err != nil {
		return err
	}
	if qs.Paused != p.paused {
		p.r.log.Info("queue: paused flag changed", "tenant", p.tenant, "queue", p.queue, "paused", qs.Paused)
	}
	p.paused = qs.Paused
	limit := int64(p.base)
	if qs.Concurrency > 0 {
		limit = int64(qs.Concurrency)
	}
	if old := p.limit.Swap(limit); old != limit {
		p.r.log.Info("queue: concurrency changed", "tenant", p.tenant, "queue", p.queue, "from", old, "to", limit)
	}
	p.grow()
	return nil
}

func (p *producer) logRefreshError(err error) {
	if err != nil {
		p.r.log.Error("queue: read settings", "tenant", p.tenant, "queue", p.queue, "err", err)
	}
}
