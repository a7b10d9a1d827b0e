package ratelimit

import (
	"math"
	"sync/atomic"
)

// dead marks a bucket evicted from its table: whoever still holds it must
// look the key up again.
const dead = math.MinInt64

// bucket is a local-mode bucket: the limiter-clock time at which it is full
// again (GCRA). The zero value is a full bucket.
type bucket struct {
	full atomic.Int64
}

func (b *bucket) evict(now int64, force bool) bool {
	for {
		f := b.full.Load()
		if !force && f > now {
			return false
		}
		if b.full.CompareAndSwap(f, dead) {
			return true
		}
	}
}

func (l *Limiter) allowLocal(key string, s shape) (Decision, result) {
	now := l.now()
	for {
		b := l.local.get(key, now)
		f := b.full.Load()
		if f == dead {
			continue
		}
		nf, d := s.gcra(f, now)
		if !d.Allowed || b.full.CompareAndSwap(f, nf) {
			return d, resultOf(d)
		}
	}
}
