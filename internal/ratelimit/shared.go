package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// lease is a shared-mode key's state on this node: the tokens it leased from
// the shared bucket and what it learnt about that bucket. Guarded by mu.
type lease struct {
	mu      sync.Mutex
	dead    bool    // evicted: look the key up again
	tokens  int     // leased and not spent
	expires int64   // when they lapse
	size    int     // tokens the last TakeTokens asked for; 0 before the first
	used    int     // tokens spent from the last lease
	demand  int     // requests that waited for the last TakeTokens
	flight  *flight // the TakeTokens in flight, or nil
	// dryUntil: the shared bucket ran dry; refuse here until then.
	dryUntil int64
	// openUntil: the store failed; allow here until then without asking.
	openUntil int64
	// model is when this node's model of the shared bucket, counting the
	// tokens leased here as still in it, is full again: Decision's Remaining
	// and Reset come from it.
	model int64
}

// flight is one TakeTokens in flight, shared by the requests for its key.
type flight struct {
	done    chan struct{} // closed when it returned
	waiters int           // requests waiting for it (guarded by the lease's mu)
}

func (e *lease) evict(now int64, force bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !force && (e.flight != nil || (e.tokens > 0 && now < e.expires) ||
		now < e.dryUntil || now < e.openUntil || now < e.model) {
		return false
	}
	e.dead = true
	return true
}

func (l *Limiter) allowShared(ctx context.Context, key string, lim Limit, s shape) (Decision, result, error) {
	for {
		now := l.now()
		e := l.lease.get(key, now)
		e.mu.Lock()
		switch {
		case e.dead:
			e.mu.Unlock()
			continue
		case e.tokens > 0 && now < e.expires:
			d := e.spend(s, now)
			e.mu.Unlock()
			return d, resultAllowed, nil
		case now < e.openUntil:
			d := e.admit(s, now)
			e.mu.Unlock()
			return d, resultError, nil
		case now < e.dryUntil:
			d := e.refuse(s, now)
			e.mu.Unlock()
			return d, resultLimited, nil
		case e.flight != nil:
			f := e.flight
			f.waiters++
			e.mu.Unlock()
			select {
			case <-f.done:
				// Its tokens, refusal or failure are in e now; look again.
				continue
			case <-ctx.Done():
				e.mu.Lock()
				f.waiters--
				e.mu.Unlock()
				return Decision{}, resultLimited, fmt.Errorf("ratelimit: wait for tokens: %w", context.Cause(ctx))
			}
		}
		return l.take(ctx, key, lim, s, e, now)
	}
}

// take leases tokens for key from the store and decides the request with
// them. The caller holds e.mu, which take releases.
func (l *Limiter) take(ctx context.Context, key string, lim Limit, s shape, e *lease, now int64) (Decision, result, error) {
	chunk := max(1, lim.Burst/l.cfg.ChunkParts)
	// Slow start: ask for twice the last lease if it was used up, for what
	// it used if it lapsed, so that a quiet key does not park tokens it will
	// let lapse; and for at least one token per request that queued up.
	next := 1
	if e.size > 0 {
		if e.tokens == 0 {
			next = 2 * e.size
		} else {
			next = max(e.used, 1)
		}
	}
	want := min(chunk, max(next, e.demand+1))
	f := &flight{done: make(chan struct{})}
	e.flight = f
	e.mu.Unlock()

	// The call serves the requests waiting for it as well as this one, so
	// it must not end with this request's context.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.StoreTimeout)
	got, wait, err := l.cfg.Store.TakeTokens(sctx, key, lim.Rate, lim.Burst, want)
	cancel()

	e.mu.Lock()
	e.flight, e.demand = nil, f.waiters
	close(f.done)
	after := l.now()
	if err != nil {
		e.openUntil = after + int64(l.cfg.LeaseTTL)
		d := e.admit(s, after)
		e.mu.Unlock()
		l.storeFailed(after, key, fmt.Errorf("take tokens: %w", err))
		return d, resultError, nil
	}
	got = min(max(got, 0), want)
	// Times count from before the call: tokens lapse no later than
	// LeaseTTL after the store granted them, and the store's wait is
	// measured from a moment within the call.
	e.tokens, e.used, e.size, e.expires = got, 0, want, now+int64(l.cfg.LeaseTTL)
	if got < want {
		if wait <= 0 {
			wait = time.Duration(s.t)
		}
		// Come back when a whole chunk has accrued, not for every token:
		// a key hammered beyond its limit then costs one round trip per
		// chunk of refill.
		e.dryUntil = now + int64(wait) + int64(chunk-1)*s.t
		// The shared bucket is dry but for the tokens got here; its next
		// token is due after wait.
		e.model = now + int64(wait) + int64(s.burst-got-1)*s.t
	}
	var d Decision
	var res result
	if e.tokens > 0 {
		d, res = e.spend(s, after), resultAllowed
	} else {
		d, res = e.refuse(s, after), resultLimited
	}
	e.mu.Unlock()
	return d, res, nil
}

// spend admits a request with a leased token. The caller holds e.mu.
func (e *lease) spend(s shape, now int64) Decision {
	e.tokens--
	e.used++
	return e.admit(s, now)
}

// admit records an admitted request in the model and decides it. The
// caller holds e.mu.
func (e *lease) admit(s shape, now int64) Decision {
	// The model never counts fewer tokens than are leased here (other
	// nodes may have emptied it as far as this node can tell, but these
	// are in hand) and never more than the burst.
	nf := min(max(e.model, now)+s.t, now+int64(s.burst-e.tokens)*s.t)
	e.model = nf
	return s.admitted(nf - now)
}

// refuse decides a refused request while the shared bucket is dry. The
// caller holds e.mu.
func (e *lease) refuse(s shape, now int64) Decision {
	retry := max(e.dryUntil-now, 1)
	return Decision{
		Limit:      s.burst,
		Reset:      time.Duration(max(e.model-now, retry)),
		RetryAfter: time.Duration(retry),
	}
}
