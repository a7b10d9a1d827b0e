package queue

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// producer owns one queue: a fetch loop that leases jobs into a channel and a
// fixed pool of worker goroutines that run them. The pool is created once, so
// no goroutine is spawned per job.
type producer struct {
	r           *Runner
	queue       string
	concurrency int

	jobs    chan *store.Job // leased, not yet started; capacity = concurrency
	running atomic.Int64    // leased and not finished
	paused  bool            // owned by the fetch loop after start

	wake         chan struct{} // jobs may have arrived
	slotFreed    chan struct{} // a worker finished a job
	queueChanged chan struct{} // paused flag may have changed
}

func newProducer(r *Runner, queue string, concurrency int) *producer {
	return &producer{
		r:            r,
		queue:        queue,
		concurrency:  concurrency,
		jobs:         make(chan *store.Job, concurrency),
		wake:         make(chan struct{}, 1),
		slotFreed:    make(chan struct{}, 1),
		queueChanged: make(chan struct{}, 1),
	}
}

func (p *producer) start() {
	p.r.fetchWG.Add(1)
	go p.fetchLoop()
	p.r.workerWG.Add(p.concurrency)
	for range p.concurrency {
		go p.work()
	}
}

// work runs jobs until the channel closes at shutdown. Jobs still buffered
// once fetching stopped are released instead of started.
func (p *producer) work() {
	defer p.r.workerWG.Done()
	for job := range p.jobs {
		select {
		case <-p.r.stopFetch:
			p.r.completer.add(store.Completion{Lease: leaseOf(job), Outcome: store.OutcomeReleased})
		default:
			p.r.execute(job)
		}
		p.running.Add(-1)
		signal(p.slotFreed)
	}
}

func (p *producer) fetchLoop() {
	defer p.r.fetchWG.Done()
	poll := newIdlePoll(p.r.cfg.PollInterval)
	defer poll.stop()
	var retry *time.Timer // backoff after a store error
	var retryC <-chan time.Time
	backoff := 10 * time.Millisecond
	more := true    // jobs may be waiting: fetch when a slot is free
	polled := false // this fetch is the fallback poll's
	for {
		if more && !p.paused && retryC == nil {
			free := p.concurrency - int(p.running.Load())
			if free > 0 {
				limit := min(free, p.r.cfg.FetchBatch)
				n, err := p.fetch(limit)
				switch {
				case err != nil:
					p.r.log.Error("queue: fetch", "queue", p.queue, "err", err)
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
					if more && int(p.running.Load()) < p.concurrency {
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
				p.refreshPaused()
			}
			more, polled = true, true
		case <-p.slotFreed:
		case <-retryC:
			retryC = nil
		case <-p.queueChanged:
			p.refreshPaused()
			more = true
		}
	}
}

func (p *producer) fetch(limit int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jobs, err := p.r.cfg.Store.Lease(ctx, store.LeaseParams{
		TenantID: p.r.cfg.TenantID,
		Queue:    p.queue,
		Limit:    limit,
		LeasedBy: p.r.cfg.NodeID,
		Duration: p.r.cfg.LeaseDuration,
	})
	if err != nil {
		return 0, err
	}
	p.running.Add(int64(len(jobs)))
	for _, j := range jobs {
		p.jobs <- j // never blocks: running ≤ concurrency = cap(jobs)
	}
	return len(jobs), nil
}

func (p *producer) refreshPaused() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	paused, err := p.r.cfg.Store.QueuePaused(ctx, p.r.cfg.TenantID, p.queue)
	if err != nil {
		p.r.log.Error("queue: read paused flag", "queue", p.queue, "err", err)
		return
	}
	if paused != p.paused {
		p.r.log.Info("queue: paused flag changed", "queue", p.queue, "paused", paused)
	}
	p.paused = paused
}
