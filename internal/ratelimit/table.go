package ratelimit

import (
	"hash/maphash"
	"sync"
)

// sweepEvery is how often a stripe that gains a new key is also swept of
// idle entries. Sweeps run inline, when a key is added, instead of on a
// timer: an idle server then never wakes up for them (DESIGN.md § Performance
// budget: idle CPU), and a busy one pays a few microseconds a minute per
// stripe.
const sweepEvery = int64(60e9) // 1 minute, in the limiter's nanoseconds

// maxStripes caps lock striping. 128 stripes keep contention on a stripe's
// read lock rare at 64 goroutines while a sweep (which holds one stripe's
// write lock) covers only 1/128 of the keys.
const maxStripes = 128

// evicter is what a table entry must do to be evicted: mark itself dead,
// so that a caller still holding it looks it up again, and report whether
// it did. Without force it agrees only when forgetting it loses nothing (a
// full bucket, a lease with nothing left); with force it always agrees.
type evicter[E any] interface {
	*E
	evict(now int64, force bool) bool
}

// table maps keys to entries in lock-striped maps of bounded size.
type table[E any, P evicter[E]] struct {
	seed      maphash.Seed
	mask      uint64
	perStripe int // most entries one stripe keeps
	stripes   []stripe[E]
}

type stripe[E any] struct {
	mu        sync.RWMutex
	m         map[string]*E
	nextSweep int64
	_         [64]byte // keeps neighbouring stripes' locks off one cache line
}

func newTable[E any, P evicter[E]](maxKeys int) *table[E, P] {
	n := 1
	for n < maxStripes && n*2 <= maxKeys {
		n *= 2
	}
	t := &table[E, P]{
		seed:      maphash.MakeSeed(),
		mask:      uint64(n - 1),
		perStripe: maxKeys / n,
		stripes:   make([]stripe[E], n),
	}
	for i := range t.stripes {
		t.stripes[i].m = make(map[string]*E)
	}
	return t
}

// get returns key's entry, adding a zero one if there is none. The caller
// must check the entry is not dead once it holds it, and call get again if
// it is.
func (t *table[E, P]) get(key string, now int64) *E {
	s := &t.stripes[maphash.String(t.seed, key)&t.mask]
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.m[key]; e != nil {
		return e
	}
	if len(s.m) >= t.perStripe || now >= s.nextSweep {
		t.sweep(s, now)
	}
	e = new(E)
	s.m[key] = e
	return e
}

// sweep evicts the stripe's idle entries and, if it is still full, random
// others (map order is random) down to three quarters of its size, so that
// the next sweep is far off and eviction costs O(1) per added key. Only
// more live keys than Config.MaxKeys at once force that second pass. The
// caller holds s.mu.
func (t *table[E, P]) sweep(s *stripe[E], now int64) {
	s.nextSweep = now + sweepEvery
	for k, e := range s.m {
		if P(e).evict(now, false) {
			delete(s.m, k)
		}
	}
	if len(s.m) < t.perStripe {
		return
	}
	target := t.perStripe * 3 / 4
	for k, e := range s.m {
		if len(s.m) <= target {
			break
		}
		P(e).evict(now, true)
		delete(s.m, k)
	}
}

// len counts the entries, for tests.
func (t *table[E, P]) len() int {
	n := 0
	for i := range t.stripes {
		s := &t.stripes[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
