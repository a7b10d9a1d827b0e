// Package queue runs jobs: per-queue fetch loops woken by store
// notifications, a fixed pool of worker goroutines per queue, a completer that
// records outcomes in batches, a heartbeater that extends leases, and the
// leader-only maintenance (rescue of expired leases, promotion of scheduled
// jobs, retention, offline-worker detection). It registers its node in the
// worker registry and reports the lifecycle events it commits to an
// EventSink (see events.go and nodes.go).
//
// Nothing polls per job. A fetch loop leases when a notification says jobs
// arrived, when a worker frees a slot after a fetch that filled every slot
// (there may be more), or on the fallback poll that covers lost notifications.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// QueueConfig configures one queue this runner works.
type QueueConfig struct {
	// Concurrency is how many of the queue's jobs run at once in this
	// process. Default 100.
	Concurrency int
}

// Config configures a Runner.
type Config struct {
	Store    store.Store
	Registry *Registry
	// TenantID whose queues are worked. Default "default".
	TenantID string
	// NodeID identifies this process in leases and leadership. Required.
	NodeID string
	// Queues to work, by name. Empty (and AllQueues and AllTenants false):
	// the runner only does maintenance. With AllTenants, it sets the
	// concurrency of the named queues in every tenant, which are worked as
	// they are found.
	Queues map[string]QueueConfig
	// AllQueues also works every other queue of the tenant, each with
	// DefaultConcurrency: those with waiting jobs or settings at start, and
	// any that gets jobs later (its insert notification starts it).
	AllQueues bool
	// AllTenants works every queue of every tenant, as AllQueues does for
	// one; TenantID is then ignored. Default false.
	AllTenants bool
	// DefaultConcurrency is the per-node concurrency of queues AllQueues
	// finds. Default 100.
	DefaultConcurrency int
	// LeaseDuration is how long a lease lasts without a heartbeat; heartbeats
	// run every third of it. Default 30s.
	LeaseDuration time.Duration
	// FetchBatch caps the jobs leased per fetch. Default 1000.
	FetchBatch int
	// PollInterval is the fallback fetch and promotion poll that covers lost
	// notifications; 0 disables it (a single-process store loses none).
	// Default 0; the PostgreSQL backend uses 1s.
	PollInterval time.Duration
	// CompleteBatch caps completions recorded per store call. Default 2000.
	CompleteBatch int
	// CompleteDelay is how long the completer gathers outcomes before
	// recording them together. Default 10ms; negative records at once.
	CompleteDelay time.Duration
	// Retry is the default retry policy. Default ExponentialBackoff{1s, 1h}.
	Retry RetryPolicy
	// Maintenance configures the leader's duties.
	Maintenance MaintenanceConfig
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics; nil records none.
	Metrics *Metrics
	// OnStart, if set, is called as each attempt starts, before its handler.
	OnStart func(*store.Job)
	// OnLeaderChange, if set, is called when this runner gains or loses
	// maintenance leadership.
	OnLeaderChange func(leader bool)
	// Events, if set, receives the lifecycle events the runner commits
	// (see EventSink). Default nil: none.
	Events EventSink
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("queue: config: Store is required")
	}
	if c.NodeID == "" {
		return errors.New("queue: config: NodeID is required")
	}
	if c.Registry == nil {
		c.Registry = NewRegistry()
	}
	if c.TenantID == "" {
		c.TenantID = "default"
	}
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = 30 * time.Second
	}
	if c.FetchBatch <= 0 {
		c.FetchBatch = 1000
	}
	if c.CompleteBatch <= 0 {
		c.CompleteBatch = 2000
	}
	switch {
	case c.CompleteDelay == 0:
		c.CompleteDelay = 10 * time.Millisecond
	case c.CompleteDelay < 0:
		c.CompleteDelay = 0
	}
	if c.Retry == nil {
		c.Retry = ExponentialBackoff{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DefaultConcurrency <= 0 {
		c.DefaultConcurrency = 100
	}
	for name, q := range c.Queues {
		if q.Concurrency <= 0 {
			q.Concurrency = 100
			c.Queues[name] = q
		}
	}
	c.Maintenance.setDefaults(c.LeaseDuration)
	return nil
}

// Runner works queues and, when elected, maintains the store.
type Runner struct {
	cfg Config
	log *slog.Logger
	// producers by tenant and queue: an immutable map replaced whole when
	// a queue is added, so Notify reads it without a lock.
	producers  atomic.Pointer[map[store.TenantQueue]*producer]
	addMu      sync.Mutex // serialises adding producers
	stopping   bool       // under addMu: no more producers
	discover   chan struct{}
	completer  *completer
	maintainer *maintainer

	workCtx    context.Context // parent of every job context
	cancelWork context.CancelCauseFunc

	mu      sync.Mutex
	running map[int64]*runningJob
	// cancelledEarly holds the last cancellations that found no running
	// job: one leased here but not yet started must not start. The ring
	// bounds it; the ids of other nodes' jobs simply age out.
	cancelledEarly     map[int64]struct{}
	cancelledEarlyRing [256]int64
	cancelledEarlyNext int

	stopFetch  chan struct{} // closed to stop fetch loops
	fetchWG    sync.WaitGroup
	workerWG   sync.WaitGroup
	bgWG       sync.WaitGroup // heartbeater
	bgStop     chan struct{}
	jobStarted chan struct{} // wakes the heartbeater from idle

	started  atomic.Bool
	stopOnce sync.Once
	stopErr  error
}

type runningJob struct {
	job    *store.Job
	cancel context.CancelCauseFunc
}

// New validates cfg and returns a runner that is not started.
func New(cfg Config) (*Runner, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Runner{
		cfg:       cfg,
		log:       cfg.Logger,
		discover:  make(chan struct{}, 1),
		running:   map[int64]*runningJob{},
		stopFetch: make(chan struct{}),
		bgStop:    make(chan struct{}),

		jobStarted: make(chan struct{}, 1),
	}
	r.workCtx, r.cancelWork = context.WithCancelCause(context.Background())
	ps := map[store.TenantQueue]*producer{}
	if !cfg.AllTenants {
		for name, q := range cfg.Queues {
			ps[store.TenantQueue{TenantID: cfg.TenantID, Queue: name}] = newProducer(r, cfg.TenantID, name, q.Concurrency)
		}
	}
	r.producers.Store(&ps)
	r.completer = newCompleter(r)
	r.maintainer = newMaintainer(r)
	return r, nil
}

// Notify routes a store notification to the component it concerns. It never
// blocks: every wake-up is a coalescing signal.
func (r *Runner) Notify(n store.Notification) {
	switch n.Kind {
	case store.NotifyInsert:
		if r.works(n.TenantID) {
			key := store.TenantQueue{TenantID: n.TenantID, Queue: n.Queue}
			if p := (*r.producers.Load())[key]; p != nil {
				signal(p.wake)
			} else if r.discovers() && r.started.Load() {
				r.addQueue(key)
			}
		}
	case store.NotifyScheduled:
		r.maintainer.wakePromoter()
	case store.NotifyCancel:
		r.cancelRunning(n.JobID, errJobCancelled)
	case store.NotifyQueue:
		if r.works(n.TenantID) {
			key := store.TenantQueue{TenantID: n.TenantID, Queue: n.Queue}
			if p := (*r.producers.Load())[key]; p != nil {
				signal(p.queueChanged)
			} else if r.discovers() && r.started.Load() {
				r.addQueue(key)
			}
		}
	case store.NotifyLeader:
		r.maintainer.wakeElection()
	case store.NotifyResync:
		for _, p := range *r.producers.Load() {
			signal(p.queueChanged)
		}
		signal(r.discover)
		r.maintainer.wakeElection()
		r.maintainer.wakePromoter()
	}
}

// works reports whether this runner works queues of the tenant.
func (r *Runner) works(tenantID string) bool {
	if r.cfg.AllTenants {
		return tenantID != ""
	}
	return tenantID == r.cfg.TenantID
}

// discovers reports whether this runner works queues it was not configured
// with, as it finds them.
func (r *Runner) discovers() bool { return r.cfg.AllQueues || r.cfg.AllTenants }

// findQueues lists the queues this runner discovers: those of its tenant,
// or of every tenant.
func (r *Runner) findQueues(ctx context.Context) ([]store.TenantQueue, error) {
	if r.cfg.AllTenants {
		return r.cfg.Store.AllQueueNames(ctx)
	}
	names, err := r.cfg.Store.QueueNames(ctx, r.cfg.TenantID)
	if err != nil {
		return nil, err
	}
	qs := make([]store.TenantQueue, len(names))
	for i, name := range names {
		qs[i] = store.TenantQueue{TenantID: r.cfg.TenantID, Queue: name}
	}
	return qs, nil
}

// Start starts the fetch loops, workers, completer, heartbeater and
// maintenance. ctx bounds startup only.
func (r *Runner) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("queue: runner already started")
	}
	// Registered before any work, so that a node that dies from here on is
	// found by the leader.
	if err := r.register(ctx); err != nil {
		r.started.Store(false)
		return fmt.Errorf("queue: start: %w", err)
	}
	r.completer.start()
	for _, p := range *r.producers.Load() {
		p.start()
	}
	if r.discovers() {
		qs, err := r.findQueues(ctx)
		if err != nil {
			r.Stop(ctx)
			return fmt.Errorf("queue: start: find queues: %w", err)
		}
		for _, q := range qs {
			r.addQueue(q)
		}
		r.bgWG.Add(1)
		go r.discoverLoop()
	}
	r.bgWG.Add(1)
	go r.heartbeatLoop()
	r.maintainer.start()
	return nil
}

// Stop shuts down gracefully: it stops fetching, releases jobs fetched but not
// started, waits for running jobs until ctx ends, then cancels them (their
// context's cause is ErrShutdown) and releases their leases at once so they
// run again promptly; finally it flushes completions and resigns leadership.
// Idempotent; later calls return the first call's result.
func (r *Runner) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { r.stopErr = r.stop(ctx) })
	return r.stopErr
}

func (r *Runner) stop(ctx context.Context) error {
	if !r.started.Load() {
		return nil
	}
	r.addMu.Lock()
	r.stopping = true
	r.addMu.Unlock()
	close(r.stopFetch)
	r.fetchWG.Wait()
	for _, p := range *r.producers.Load() {
		close(p.jobs) // workers release what is still buffered, then exit
	}
	done := make(chan struct{})
	go func() { r.workerWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		r.cancelWork(errShutdown)
		// Handlers that return on cancellation are released by their
		// workers. Those that ignore their context still hold leases: void
		// them now so the jobs run again without waiting for expiry; their
		// late outcomes will be rejected as stale.
		r.mu.Lock()
		var stuck []store.Completion
		for _, rj := range r.running {
			stuck = append(stuck, store.Completion{Lease: leaseOf(rj.job), Outcome: store.OutcomeReleased})
		}
		r.mu.Unlock()
		for _, c := range stuck {
			r.completer.add(c, nil)
		}
		select {
		case <-done:
		case <-time.After(r.cfg.Maintenance.ShutdownGrace):
			r.log.Warn("queue: handlers ignored cancellation; their jobs were released", "count", len(stuck))
		}
	}
	close(r.bgStop)
	r.bgWG.Wait()
	r.maintainer.stop()
	err := r.completer.stop(ctx)
	r.cancelWork(errShutdown)
	r.unregister(ctx)
	return err
}

// addQueue starts working a queue this runner does not work yet, with the
// default concurrency (or, with AllTenants, the one Queues gives its name).
// It does not block on the store: the new fetch loop reads the queue's
// settings itself.
func (r *Runner) addQueue(key store.TenantQueue) {
	r.addMu.Lock()
	defer r.addMu.Unlock()
	old := *r.producers.Load()
	if r.stopping || old[key] != nil {
		return
	}
	ps := make(map[store.TenantQueue]*producer, len(old)+1)
	for k, v := range old {
		ps[k] = v
	}
	concurrency := r.cfg.DefaultConcurrency
	if q, ok := r.cfg.Queues[key.Queue]; ok && r.cfg.AllTenants {
		concurrency = q.Concurrency
	}
	p := newProducer(r, key.TenantID, key.Queue, concurrency)
	ps[key] = p
	r.producers.Store(&ps)
	p.start()
	r.log.Debug("queue: working new queue", "tenant", key.TenantID, "queue", key.Queue)
}

// discoverLoop looks for queues whose first insert notification this process
// may have missed (the store said to resync).
func (r *Runner) discoverLoop() {
	defer r.bgWG.Done()
	for {
		select {
		case <-r.bgStop:
			return
		case <-r.discover:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		qs, err := r.findQueues(ctx)
		cancel()
		if err != nil {
			r.log.Error("queue: find queues", "err", err)
			continue
		}
		for _, q := range qs {
			r.addQueue(q)
		}
	}
}

func leaseOf(j *store.Job) store.Lease {
	return store.Lease{JobID: j.ID, Attempt: j.Attempt, Token: j.LeaseToken}
}

// cancelRunning cancels a running job's context with cause, if it runs here.
func (r *Runner) cancelRunning(id int64, cause error) bool {
	r.mu.Lock()
	rj := r.running[id]
	if rj == nil && errors.Is(cause, errJobCancelled) {
		r.rememberCancel(id)
	}
	r.mu.Unlock()
	if rj == nil {
		return false
	}
	rj.cancel(cause)
	return true
}

// rememberCancel records a cancellation that found no running job. r.mu
// must be held.
func (r *Runner) rememberCancel(id int64) {
	if r.cancelledEarly == nil {
		r.cancelledEarly = make(map[int64]struct{}, len(r.cancelledEarlyRing))
	}
	slot := &r.cancelledEarlyRing[r.cancelledEarlyNext%len(r.cancelledEarlyRing)]
	if *slot != 0 {
		delete(r.cancelledEarly, *slot)
	}
	*slot = id
	r.cancelledEarly[id] = struct{}{}
	r.cancelledEarlyNext++
}

// RunningCount reports the attempts running in this process.
func (r *Runner) RunningCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// execute runs one leased job to its outcome and hands that to the completer.
func (r *Runner) execute(job *store.Job) {
	kind := r.cfg.Registry.Lookup(job.Kind)
	ctx, cancel := context.WithCancelCause(r.workCtx)
	defer cancel(nil)
	timeout := job.Timeout
	if timeout <= 0 && kind != nil {
		timeout = kind.Timeout
	}
	runCtx := ctx
	if timeout > 0 {
		var cancelTimeout context.CancelFunc
		runCtx, cancelTimeout = context.WithTimeout(ctx, timeout)
		defer cancelTimeout()
	}
	r.mu.Lock()
	_, cancelled := r.cancelledEarly[job.ID]
	if !cancelled {
		r.running[job.ID] = &runningJob{job: job, cancel: cancel}
	}
	r.mu.Unlock()
	if cancelled {
		// Cancelled after it was leased here and before it started: the
		// cancel voided its lease, so there is nothing to run or record.
		r.log.Debug("queue: job cancelled before it started", "job", job.ID)
		return
	}
	signal(r.jobStarted)
	if r.cfg.OnStart != nil {
		r.cfg.OnStart(job)
	}
	r.cfg.Metrics.started(job)
	start := time.Now()

	exec := &Execution{Job: job, store: r.cfg.Store, r: r}
	var err error
	if kind == nil || kind.Handler == nil {
		err = fmt.Errorf("no handler for kind %q in this worker", job.Kind)
	} else {
		err = callHandler(runCtx, kind.Handler, exec)
	}

	r.mu.Lock()
	delete(r.running, job.ID)
	r.mu.Unlock()

	c, record := r.outcome(job, kind, exec, err, context.Cause(ctx), runCtx.Err(), timeout)
	r.cfg.Metrics.finished(job, c.Outcome, time.Since(start))
	if record {
		r.completer.add(c, job)
	}
}

// outcome classifies how an attempt ended. record is false when the outcome
// must not be written (the lease is known to be gone).
func (r *Runner) outcome(job *store.Job, kind *Kind, exec *Execution, err, cause, runErr error, timeout time.Duration) (c store.Completion, record bool) {
	c.Lease = leaseOf(job)
	switch {
	case errors.Is(cause, errLeaseLost):
		return c, false
	case errors.Is(cause, errJobCancelled):
		// Cancel already wrote the final state and voided the lease; this
		// write is fenced off and kept only for the record of intent.
		c.Outcome = store.OutcomeCancelled
		return c, false
	case errors.Is(cause, errShutdown) && err != nil:
		c.Outcome = store.OutcomeReleased
		return c, true
	}
	var snooze *SnoozeError
	var discard *DiscardError
	var retryAfter *RetryAfterError
	switch {
	case err == nil:
		c.Outcome = store.OutcomeSucceeded
		c.Result = store.CleanJSON(exec.Result)
	case errors.As(err, &snooze):
		c.Outcome = store.OutcomeSnoozed
		c.Delay = snooze.Delay
	case errors.As(err, &discard):
		c.Outcome = store.OutcomeDead
		c.Error = discard.Error()
	default:
		c.Outcome = store.OutcomeFailed
		c.Error = err.Error()
		if errors.Is(runErr, context.DeadlineExceeded) && timeout > 0 {
			c.Error = fmt.Sprintf("timed out after %s: %s", timeout, err)
		}
		policy := r.cfg.Retry
		if kind != nil && kind.Retry != nil {
			policy = kind.Retry
		}
		c.RetryIn = policy.NextRetry(job.Attempt)
		if errors.As(err, &retryAfter) {
			c.RetryIn = max(retryAfter.Delay, 0)
		}
	}
	c.Error = store.CleanText(c.Error)
	return c, true
}

// callHandler runs h, turning a panic into an error carrying the stack.
func callHandler(ctx context.Context, h HandlerFunc, exec *Execution) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return h(ctx, exec)
}

// retryDelay is the backoff the rescuer uses for a job whose lease expired.
func (r *Runner) retryDelay(job *store.Job) time.Duration {
	if k := r.cfg.Registry.Lookup(job.Kind); k != nil && k.Retry != nil {
		return k.Retry.NextRetry(job.Attempt)
	}
	return r.cfg.Retry.NextRetry(job.Attempt)
}

// heartbeatLoop extends the leases of running jobs every third of the lease
// duration. With nothing running it sleeps until a job starts, so an idle
// process does not wake for it.
func (r *Runner) heartbeatLoop() {
	defer r.bgWG.Done()
	every := r.cfg.LeaseDuration / 3
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-r.bgStop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		leases := make([]store.Lease, 0, len(r.running))
		for _, rj := range r.running {
			leases = append(leases, leaseOf(rj.job))
		}
		r.mu.Unlock()
		if len(leases) == 0 {
			select {
			case <-r.bgStop:
				return
			case <-r.jobStarted:
			}
			t.Reset(every)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		stale, err := r.cfg.Store.Heartbeat(ctx, leases, r.cfg.LeaseDuration)
		cancel()
		t.Reset(every)
		if err != nil {
			r.log.Error("queue: heartbeat", "err", err, "jobs", len(leases))
			continue
		}
		for _, l := range stale {
			r.cancelRunning(l.JobID, errLeaseLost)
		}
	}
}
