package queue

import (
	"context"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// MaintenanceConfig configures the leader's duties.
type MaintenanceConfig struct {
	// Disabled turns maintenance off in this process (it never leads; it
	// still heartbeats its node). Default false.
	Disabled bool
	// LeaderTTL is how long leadership lasts unrenewed; the leader renews
	// every third of it and followers try as often, so a dead leader is
	// replaced within about 1⅓ TTL, or at once when the store announces its
	// death with NotifyLeader. Default 3s.
	LeaderTTL time.Duration
	// RescueInterval caps the time between checks for expired leases.
	// Default: LeaseDuration / 2, rounded down to a multiple of 8s.
	RescueInterval time.Duration
	// Retention: finished jobs are deleted after these ages; 0 keeps them.
	// Defaults: succeeded 24h, cancelled 7 days, dead 7 days.
	Retention store.RetentionParams
	// EventRetention is how long received events, and the attempts to
	// deliver them, are kept. Default 30 days.
	EventRetention time.Duration
	// CleanupInterval is the time between retention runs. Default 56s (a
	// minute, rounded down to a multiple of 8s).
	CleanupInterval time.Duration
	// ShutdownGrace is how long Stop waits, after cancelling jobs whose
	// deadline passed, for their handlers to return. Default 5s.
	ShutdownGrace time.Duration
	// NodeTimeout is how long this node may go without a heartbeat before
	// the leader declares it offline (worker.offline). Nodes heartbeat every
	// LeaderTTL/3, with leadership renewal, so the default, 4 × LeaderTTL/3,
	// is three heartbeats missed in a row. Each node registers its own, so
	// nodes with different settings are each judged by theirs; a leader
	// also gives every node at least its own NodeTimeout.
	NodeTimeout time.Duration
	// NodeRetention is how long the registry keeps nodes that went offline
	// without stopping, for operators to see. Default 24h.
	NodeRetention time.Duration
}

func (c *MaintenanceConfig) setDefaults(lease time.Duration) {
	if c.LeaderTTL <= 0 {
		c.LeaderTTL = 3 * time.Second
	}
	if c.RescueInterval <= 0 {
		c.RescueInterval = onIdleTick(lease / 2)
	}
	if c.Retention == (store.RetentionParams{}) {
		c.Retention = store.RetentionParams{Succeeded: 24 * time.Hour, Cancelled: 7 * 24 * time.Hour, Dead: 7 * 24 * time.Hour}
	}
	if c.Retention.Limit <= 0 {
		c.Retention.Limit = 10000
	}
	if c.EventRetention <= 0 {
		c.EventRetention = 30 * 24 * time.Hour
	}
	if c.CleanupInterval <= 0 {
		c.CleanupInterval = onIdleTick(time.Minute)
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 5 * time.Second
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = 4 * (c.LeaderTTL / 3)
	}
	if c.NodeRetention <= 0 {
		c.NodeRetention = 24 * time.Hour
	}
}

// idleRecheck bounds how long promotion sleeps when it has no poll interval
// and expects nothing.
const idleRecheck = 30 * time.Second

// leadershipName is the leaders row that decides who maintains the store.
const leadershipName = "maintenance"

// maintainer holds or seeks leadership and, while leading, rescues expired
// leases, promotes due jobs and applies retention. It sleeps until the next
// thing is due, woken early by notifications, so an idle store costs a
// leadership renewal every TTL/3 and nothing else.
type maintainer struct {
	r        *Runner
	cfg      MaintenanceConfig
	election chan struct{}
	promote  chan struct{}
	quit     chan struct{}
	done     chan struct{}
	leading  bool
}

func newMaintainer(r *Runner) *maintainer {
	return &maintainer{
		r:        r,
		cfg:      r.cfg.Maintenance,
		election: make(chan struct{}, 1),
		promote:  make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

func (m *maintainer) wakeElection() { signal(m.election) }
func (m *maintainer) wakePromoter() { signal(m.promote) }

// signal sends a coalescing wake-up on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (m *maintainer) start() { go m.loop() }

func (m *maintainer) stop() {
	select {
	case <-m.quit:
	default:
		close(m.quit)
	}
	<-m.done
}

// IsLeader reports whether this runner currently leads maintenance.
func (r *Runner) IsLeader() bool { return r.maintainer.isLeader() }

func (m *maintainer) isLeader() bool {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	return m.leading
}

func (m *maintainer) setLeading(v bool) {
	m.r.mu.Lock()
	changed := m.leading != v
	m.leading = v
	m.r.mu.Unlock()
	if changed {
		m.r.log.Info("queue: leadership changed", "node", m.r.cfg.NodeID, "leader", v)
		m.r.cfg.Metrics.setLeader(v)
		if m.r.cfg.OnLeaderChange != nil {
			m.r.cfg.OnLeaderChange(v)
		}
	}
}

func (m *maintainer) loop() {
	defer close(m.done)
	store := m.r.cfg.Store
	renewEvery := m.cfg.LeaderTTL / 3
	var nextRenew, nextRescue, nextPromote, nextCleanup, nextNodes time.Time // zero: due now
	// The node heartbeats with leadership renewal, on the same wall-clock
	// multiples; it registered just now, at start.
	nextBeat := alignedAfter(time.Now(), renewEvery)
	// The fallback promotion poll backs off while it finds nothing. Without
	// a poll interval (SQLite) it still looks every idleRecheck, for jobs
	// scheduled by another process on the same file, which cannot notify us.
	promotePoll := m.r.cfg.PollInterval
	if promotePoll == 0 {
		promotePoll = idleRecheck
	}
	promoteEvery := promotePoll
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		if !now.Before(nextBeat) {
			m.r.heartbeatNode(renewEvery)
			nextBeat = alignedAfter(now, renewEvery)
		}
		if !m.cfg.Disabled && !now.Before(nextRenew) {
			ctx, cancel := context.WithTimeout(context.Background(), renewEvery)
			lead, err := store.TryLead(ctx, leadershipName, m.r.cfg.NodeID, m.cfg.LeaderTTL)
			cancel()
			if err != nil {
				m.r.log.Error("queue: leader election", "err", err)
				lead = false
			}
			if lead && !m.isLeader() {
				nextRescue, nextPromote, nextCleanup, nextNodes = now, now, now, now
			}
			m.setLeading(lead)
			nextRenew = alignedAfter(now, renewEvery)
		}
		if m.isLeader() {
			if !now.Before(nextPromote) {
				n, next := m.runPromote()
				switch {
				case n > 0:
					promoteEvery = promotePoll
				case next < 0 || next >= promoteEvery:
					promoteEvery = min(2*promoteEvery, max(idlePollFactor*promotePoll, promotePoll))
				}
				if next >= 0 && next < promoteEvery {
					nextPromote = now.Add(next)
				} else {
					nextPromote = alignedAfter(now, promoteEvery)
				}
			}
			if !now.Before(nextRescue) {
				if next := m.runRescue(); next < m.cfg.RescueInterval {
					nextRescue = now.Add(next)
				} else {
					nextRescue = alignedAfter(now, m.cfg.RescueInterval)
				}
			}
			if !now.Before(nextCleanup) {
				m.runCleanup()
				nextCleanup = alignedAfter(now, m.cfg.CleanupInterval)
			}
			if !now.Before(nextNodes) {
				m.markDeadNodes()
				nextNodes = alignedAfter(now, renewEvery)
			}
		}
		due := nextBeat
		if !m.cfg.Disabled && nextRenew.Before(due) {
			due = nextRenew
		}
		if m.isLeader() {
			for _, t := range []time.Time{nextPromote, nextRescue, nextCleanup, nextNodes} {
				if t.Before(due) {
					due = t
				}
			}
		}
		timer.Reset(max(time.Until(due), 0))
		select {
		case <-m.quit:
			if m.isLeader() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := store.Resign(ctx, leadershipName, m.r.cfg.NodeID); err != nil {
					m.r.log.Error("queue: resign leadership", "err", err)
				}
				cancel()
				m.setLeading(false)
			}
			return
		case <-timer.C:
		case <-m.election:
			if !m.cfg.Disabled {
				nextRenew = time.Time{}
			}
		case <-m.promote:
			nextPromote = time.Time{}
		}
	}
}

// runPromote promotes due jobs. It returns how many it promoted and when
// promotion is next due: 0 to run again at once, -1 if nothing is pending.
func (m *maintainer) runPromote() (n int, next time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const limit = 5000
	n, next, err := m.r.cfg.Store.PromoteScheduled(ctx, limit)
	switch {
	case err != nil:
		m.r.log.Error("queue: promote scheduled jobs", "err", err)
		return 0, time.Second
	case n == limit:
		return n, 0
	}
	return n, next
}

// runRescue rescues expired leases and returns how long until the next check.
func (m *maintainer) runRescue() time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const limit = 1000
	jobs, next, err := m.r.cfg.Store.RescueExpiredJobs(ctx, limit, m.r.retryDelay)
	if err != nil {
		m.r.log.Error("queue: rescue expired leases", "err", err)
		return time.Second
	}
	n := len(jobs)
	if n > 0 {
		evs := make([]Event, n)
		for i, j := range jobs {
			evs[i] = JobEvent(EventJobDead, j)
			if j.State == store.StateRetryable {
				evs[i].Type, evs[i].RunAt = EventJobRetrying, j.RunAt
			}
			evs[i].Error = rescueError
		}
		m.r.emit(evs...)
		m.r.log.Warn("queue: rescued jobs whose lease expired", "count", n)
		m.r.cfg.Metrics.rescued(n)
		m.wakePromoter()
	}
	if n == limit {
		return 0
	}
	if next > 0 && next < m.cfg.RescueInterval {
		return next
	}
	return m.cfg.RescueInterval
}

func (m *maintainer) runCleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := m.r.cfg.Store.DeleteFinished(ctx, m.cfg.Retention)
	if err != nil {
		m.r.log.Error("queue: retention", "err", err)
		return
	}
	if n > 0 {
		m.r.log.Info("queue: deleted finished jobs past retention", "count", n)
	}
	// Received events, and the log of their deliveries, age out together.
	for what, del := range map[string]func(context.Context, time.Time, int) (int, error){
		"events":            m.r.cfg.Store.DeleteEventsBefore,
		"delivery attempts": m.r.cfg.Store.DeleteDeliveryAttemptsBefore,
	} {
		for {
			n, err := del(ctx, time.Now().Add(-m.cfg.EventRetention), m.cfg.Retention.Limit)
			if err != nil {
				m.r.log.Error("queue: retention of "+what, "err", err)
				break
			}
			if n > 0 {
				m.r.log.Info("queue: deleted "+what+" past retention", "count", n)
			}
			if n < m.cfg.Retention.Limit {
				break
			}
		}
	}
	if _, err := m.r.cfg.Store.PruneNodes(ctx, m.cfg.NodeRetention); err != nil {
		m.r.log.Error("queue: prune offline nodes", "err", err)
	}
}

// rescueError is what job events say of an attempt whose lease expired
// (the store records its own wording in the job's errors).
const rescueError = "lease expired: the worker stopped heartbeating before the job finished"
