// Package ratelimit limits request rates with token buckets, per key (an API
// key, a user, a client address), either in one process or across every
// server process that shares a PostgreSQL database.
//
// # Buckets
//
// A bucket holds up to Limit.Burst tokens and gains Limit.Rate tokens a
// second; a request takes one token or is refused. A new bucket starts full.
// Buckets are kept as GCRA (the "virtual scheduling" form of a token bucket):
// one number, the time at which the bucket will be full again, from which the
// level, the Remaining and Reset of a Decision and the wait of a refusal all
// follow. Refill is lazy, computed when a request comes; nothing runs between
// requests.
//
// # Local mode
//
// Without Config.Store the buckets live in this process's memory, which is
// right when one process owns the database (SQLite). A bucket is an atomic
// int64 updated by compare-and-swap in lock-striped maps, so 64 goroutines
// on one key or on many cost about a hundred nanoseconds a request and no
// allocation (BenchmarkLocalAllow). Memory is bounded by Config.MaxKeys: when a key is added to a
// stripe that is full, or that was not swept for a minute, the stripe drops
// its full buckets (forgetting a full bucket loses nothing: a new one starts
// full) and, if more than MaxKeys keys are all in use at once, random
// others, which then start full again.
//
// # Shared mode
//
// With Config.Store the bucket of a key lives in the store (Store.TakeTokens,
// database clock), so all nodes share it; but a round trip per request would
// cost more than the request (a node answers 10-20k requests a second), so
// nodes lease tokens in chunks:
//
//   - A node asks the shared bucket for a chunk of tokens and spends them
//     locally, one per request. A chunk is at most max(1, Burst/ChunkParts)
//     (5 % of the bucket with the default 20 parts). Its size starts at one
//     and doubles while leases are used up, up to that maximum, and after a
//     lease lapsed with tokens left it asks only for what the last one used:
//     a key with little traffic on a node leases about what it needs.
//   - Requests for one key on one node share one TakeTokens in flight; those
//     that come while it is in flight wait for it and are counted into the
//     next one's size.
//   - Leased tokens lapse after Config.LeaseTTL (default 1 s) from the moment
//     they were asked for, so that tokens parked on a node that went quiet
//     cannot be spent in a later burst on top of a refilled bucket.
//   - When the shared bucket runs dry (TakeTokens gives fewer than asked),
//     the node refuses that key locally, without asking again, until the
//     store's wait plus the time a chunk takes to refill have passed. So a
//     key hammered far beyond its limit costs each node at most one round
//     trip per chunk of refill, not one per request or per token.
//
// The bounds this gives, for N nodes and one key:
//
//   - Over-admission: none beyond the shared bucket. A node admits a request
//     only with a token the store granted, so the requests admitted by all
//     nodes together never exceed what the bucket granted: Burst + Rate × t
//     since the bucket was created. Over a sliding window, tokens leased
//     before it may be spent in it; at most one lease per node is live, so a
//     window admits at most N × chunk more than Burst + Rate × window, and
//     only with tokens leased within the last LeaseTTL.
//   - Under-admission: at most the tokens parked on the nodes, one chunk per
//     node (N × chunk), which lapse unused if their node gets no more
//     requests; plus, for a key that ran dry, up to a chunk per node that
//     accrues in the shared bucket while those nodes wait to come back. Such
//     tokens are delayed, not lost, unless the bucket fills up meanwhile.
//   - Round trips: per key and node, about the node's admitted rate divided
//     by the chunk size, and never more than one at a time.
//
// Measured by TestSharedThreeNodesStayWithinLimit (3 nodes on one
// PostgreSQL database hammering one key, burst 300, 100/s): the nodes admit
// 97 to 99.7 % of burst + rate × elapsed, never more, with one TakeTokens
// per 200 to 500 attempts.
//
// In shared mode a node only sees its own use of a bucket, so Decision's
// Remaining and Reset come from a model of the shared bucket that the node
// keeps from its own admissions and corrects whenever the store says the
// bucket ran dry: exact with one node, optimistic with several.
//
// When the store fails (database down, or slower than Config.StoreTimeout),
// requests are allowed (fail open) rather than turning an outage of the
// database into an outage of the API. The failure is logged at Warn at most
// once a minute and counted; for LeaseTTL after a failure that key's requests
// are allowed without asking the store again, so a dead database is not
// hammered by every request.
//
// The limiter runs no goroutines and has no Start or Stop: all its work,
// sweeps included, is done by the requests that call Allow.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limit is a token bucket's shape.
type Limit struct {
	// Rate is the tokens added per second, and so the sustained requests
	// per second allowed. Must be positive.
	Rate float64
	// Burst is the bucket's size: how many requests may come at once after
	// a quiet spell. Must be from 1 to 2³¹-1.
	Burst int
}

// Decision is the answer to one request, with what the RateLimit-* and
// Retry-After response headers need.
type Decision struct {
	// Allowed is whether the request may go on.
	Allowed bool
	// Limit is the bucket's burst, for RateLimit-Limit.
	Limit int
	// Remaining is how many more requests the bucket would admit now, for
	// RateLimit-Remaining. It is 0 when the request was refused.
	Remaining int
	// Reset is the time until the bucket is full again, for
	// RateLimit-Reset.
	Reset time.Duration
	// RetryAfter is, for a refused request, the time until one would be
	// admitted, for Retry-After; 0 when allowed.
	RetryAfter time.Duration
}

// TokenStore is the part of store.Store that shared mode uses.
type TokenStore interface {
	// TakeTokens takes up to want tokens from the shared token bucket key,
	// which refills at rate tokens per second up to burst (database clock;
	// a new bucket starts full). It returns how many it took and, when that
	// is fewer than want, how long until the next token is due.
	TakeTokens(ctx context.Context, key string, rate float64, burst, want int) (got int, wait time.Duration, err error)
}

// Config configures a Limiter.
type Config struct {
	// Store, if set, selects shared mode: buckets live in the store and are
	// shared by every process using it, with tokens leased in chunks (see
	// the package comment). Use it on PostgreSQL. Nil selects local mode:
	// buckets in this process's memory, right on SQLite, where one process
	// owns the database. Keys are passed to the store as they are. Default
	// nil.
	Store TokenStore
	// LeaseTTL is, in shared mode, how long leased tokens may be spent
	// before they lapse, and how long a key is allowed without asking the
	// store after the store failed. Default 1s.
	LeaseTTL time.Duration
	// ChunkParts sets, in shared mode, the largest lease to Burst /
	// ChunkParts tokens (at least 1). More parts mean less under-admission
	// and more round trips. Default 20.
	ChunkParts int
	// StoreTimeout bounds each TakeTokens call; a slower answer counts as a
	// store failure, and the request is allowed. Default 1s.
	StoreTimeout time.Duration
	// MaxKeys bounds the keys whose buckets (local mode) or leases (shared
	// mode) are kept in memory. Default 100000.
	MaxKeys int
	// Logger receives the store failures, at most one line a minute.
	// Default slog.Default().
	Logger *slog.Logger
	// Registerer, if set, registers the counter
	// switchyard_ratelimit_decisions_total{result="allowed|limited|error"}.
	// Default nil (no metrics).
	Registerer prometheus.Registerer
}

// Limiter decides whether requests may go on. It is safe for concurrent
// use.
type Limiter struct {
	cfg   Config
	epoch time.Time // the limiter's clock counts nanoseconds from here
	local *table[bucket, *bucket]
	lease *table[lease, *lease]

	allowed, limited, failed prometheus.Counter // nil without a Registerer

	lastWarn   atomic.Int64 // limiter clock of the last store-failure log line
	suppressed atomic.Int64 // failures not logged since then
}

// New validates cfg, fills in its defaults and returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	if cfg.LeaseTTL < 0 || cfg.StoreTimeout < 0 || cfg.ChunkParts < 0 || cfg.MaxKeys < 0 {
		return nil, errors.New("ratelimit: new: LeaseTTL, StoreTimeout, ChunkParts and MaxKeys must not be negative")
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = time.Second
	}
	if cfg.ChunkParts == 0 {
		cfg.ChunkParts = 20
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = time.Second
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = 100000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Limiter{cfg: cfg, epoch: time.Now()}
	if cfg.Store == nil {
		l.local = newTable[bucket](cfg.MaxKeys)
	} else {
		l.lease = newTable[lease](cfg.MaxKeys)
	}
	l.lastWarn.Store(math.MinInt64 / 2)
	if cfg.Registerer != nil {
		decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_ratelimit_decisions_total",
			Help: "Rate-limit decisions, by result: allowed, limited (refused), or error (allowed because the store failed).",
		}, []string{"result"})
		if err := cfg.Registerer.Register(decisions); err != nil {
			return nil, fmt.Errorf("ratelimit: register metrics: %w", err)
		}
		// Bound once, so that counting a decision is one atomic add.
		l.allowed = decisions.WithLabelValues("allowed")
		l.limited = decisions.WithLabelValues("limited")
		l.failed = decisions.WithLabelValues("error")
	}
	return l, nil
}

// Allow spends one token of key's bucket, shaped by lim, and says whether
// the request may go on. The error is non-nil only for an invalid lim, or
// when ctx ends while the request waits for another's TakeTokens; a store
// failure allows the request (see the package comment).
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit) (Decision, error) {
	s, err := lim.shape()
	if err != nil {
		return Decision{}, err
	}
	var (
		d   Decision
		res result
	)
	if l.local != nil {
		d, res = l.allowLocal(key, s)
	} else if d, res, err = l.allowShared(ctx, key, lim, s); err != nil {
		return Decision{}, err
	}
	if l.allowed != nil {
		switch res {
		case resultAllowed:
			l.allowed.Inc()
		case resultLimited:
			l.limited.Inc()
		case resultError:
			l.failed.Inc()
		}
	}
	return d, nil
}

// result is how a decision is counted.
type result int

const (
	resultAllowed result = iota
	resultLimited
	resultError // allowed because the store failed
)

func resultOf(d Decision) result {
	if d.Allowed {
		return resultAllowed
	}
	return resultLimited
}

// now is the limiter's clock: monotonic nanoseconds since New.
func (l *Limiter) now() int64 { return int64(time.Since(l.epoch)) }

// shape is a Limit in the limiter's integer nanoseconds.
type shape struct {
	burst int
	t     int64 // nanoseconds per token
	tau   int64 // (burst-1)·t: how far ahead of now a bucket may be full and still admit
}

// maxFill bounds burst/rate, so that no bucket arithmetic can overflow an
// int64 of nanoseconds.
const maxFill = float64(1 << 60)

func (lim Limit) shape() (shape, error) {
	// The stores keep bursts in 32 bits.
	if !(lim.Rate > 0) || math.IsInf(lim.Rate, 0) || lim.Burst < 1 || lim.Burst > math.MaxInt32 {
		return shape{}, fmt.Errorf("ratelimit: invalid limit %+v: rate must be positive and finite, burst from 1 to %d", lim, math.MaxInt32)
	}
	if float64(lim.Burst)*1e9/lim.Rate > maxFill {
		return shape{}, fmt.Errorf("ratelimit: invalid limit %+v: the bucket would take centuries to fill", lim)
	}
	t := max(int64(math.Round(1e9/lim.Rate)), 1)
	return shape{burst: lim.Burst, t: t, tau: int64(lim.Burst-1) * t}, nil
}

// gcra applies one request to a bucket full at f. It returns the bucket's
// new full-at time and the decision.
func (s shape) gcra(f, now int64) (int64, Decision) {
	base := max(f, now)
	if ahead := base - now; ahead > s.tau {
		return f, Decision{Limit: s.burst, Reset: time.Duration(ahead), RetryAfter: time.Duration(ahead - s.tau)}
	}
	nf := base + s.t
	return nf, s.admitted(nf - now)
}

// admitted is the decision for an admitted request that left the bucket
// full in debt nanoseconds.
func (s shape) admitted(debt int64) Decision {
	return Decision{
		Allowed:   true,
		Limit:     s.burst,
		Remaining: max(s.burst-int((debt+s.t-1)/s.t), 0),
		Reset:     time.Duration(max(debt, 0)),
	}
}

// storeFailed logs a store failure if none was logged in the last minute,
// saying how many were not.
func (l *Limiter) storeFailed(now int64, key string, err error) {
	last := l.lastWarn.Load()
	if now-last < int64(time.Minute) || !l.lastWarn.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	l.cfg.Logger.Warn("ratelimit: store failed; allowing requests without limit",
		"key", key, "err", err, "failures_not_logged", l.suppressed.Swap(0))
}
