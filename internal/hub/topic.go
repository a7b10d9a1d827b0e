package hub

import (
	"sync"
	"time"
)

// topicKey names a topic: topics are tenant-isolated.
type topicKey struct{ tenant, name string }

// topic is one topic on this node: its numbering, history and subscribers.
type topic struct {
	key topicKey

	mu    sync.Mutex
	epoch string // what last's numbering belongs to
	last  uint64 // offset of the newest message, 0 before the first
	hist  ring   // messages last-hist.n+1 … last, oldest first
	subs  []*subscription
	// idleSince is when the last subscriber left: the sweep drops a topic
	// idle for the history TTL, by when any position a client took from
	// it could only get a gap.
	idleSince time.Time
	// dead: removed from the hub; whoever finds it so looks the key up
	// again.
	dead bool
}

// subscription is one subscriber's membership of one topic.
type subscription struct {
	s   *Subscriber
	t   *topic
	idx int // position in t.subs, -1 once removed; under t.mu
}

// deliver numbers m, records it in the history and hands it to every
// subscriber without waiting: a subscriber whose buffer is full is closed
// as a slow consumer. It returns how many subscribers got m and how many
// were closed. t.mu must be held.
func (t *topic) deliver(h *Hub, m *Message, now time.Time) (delivered, evicted int) {
	t.trim(now.Add(-h.cfg.HistoryTTL))
	t.last++
	m.Offset, m.Epoch = t.last, t.epoch
	t.hist.push(entry{m: m, at: now.UnixNano()}, h.cfg.HistorySize)
	for i := 0; i < len(t.subs); {
		s := t.subs[i].s
		if s.closed.Load() {
			// Closed meanwhile (evicted from another topic): forget it here.
			t.removeAt(i)
			continue
		}
		select {
		case s.ch <- m:
			delivered++
			i++
		default:
			s.close(h.slowErr)
			evicted++
			t.removeAt(i)
		}
	}
	return delivered, evicted
}

// replay answers a subscription resuming from since. t.mu must be held.
func (t *topic) replay(since *Position) Replay {
	r := Replay{Position: Position{Offset: t.last, Epoch: t.epoch}}
	if since == nil {
		return r
	}
	first := t.last - uint64(t.hist.n) + 1 // oldest offset held
	switch {
	case since.Epoch != t.epoch || since.Offset > t.last:
		// Another node's or another life's numbering, or one this topic
		// never reached: nothing can be matched.
		r.Gap = true
	case since.Offset == t.last:
	case since.Offset+1 >= first:
		from := int(since.Offset + 1 - first)
		r.Missed = make([]*Message, 0, t.hist.n-from)
		for i := from; i < t.hist.n; i++ {
			r.Missed = append(r.Missed, t.hist.at(i).m)
		}
	default:
		r.Gap = true
	}
	return r
}

// trim drops history that arrived before cutoff. t.mu must be held.
func (t *topic) trim(cutoff time.Time) {
	c := cutoff.UnixNano()
	for t.hist.n > 0 && t.hist.at(0).at < c {
		t.hist.dropOldest()
	}
}

// add registers sub. t.mu must be held.
func (t *topic) add(sub *subscription) {
	sub.idx = len(t.subs)
	t.subs = append(t.subs, sub)
}

// remove unregisters sub if it still is. t.mu must be held.
func (t *topic) remove(sub *subscription) {
	if sub.idx >= 0 {
		t.removeAt(sub.idx)
	}
}

// removeAt unregisters t.subs[i], moving the last one into its place.
// t.mu must be held.
func (t *topic) removeAt(i int) {
	gone := t.subs[i]
	last := len(t.subs) - 1
	t.subs[i] = t.subs[last]
	t.subs[i].idx = i
	t.subs[last] = nil
	t.subs = t.subs[:last]
	gone.idx = -1
	if len(t.subs) == 0 {
		t.subs = nil // a topic that had thousands of subscribers shrinks back
		t.idleSince = time.Now()
	}
}

// dropSubs unregisters every subscriber. t.mu must be held.
func (t *topic) dropSubs() {
	for _, sub := range t.subs {
		sub.idx = -1
	}
	t.subs = nil
	t.idleSince = time.Now()
}

// pruneClosed unregisters subscribers closed since the topic last
// delivered. t.mu must be held.
func (t *topic) pruneClosed() {
	for i := 0; i < len(t.subs); {
		if t.subs[i].s.closed.Load() {
			t.removeAt(i)
		} else {
			i++
		}
	}
}

// entry is one message of a history, with when it arrived here (the
// history's age is this node's, whatever the publisher's clock says).
type entry struct {
	m  *Message
	at int64 // unix nanoseconds
}

// ring is a topic's history: a circular buffer that grows as needed up to
// the history size, so that the many topics with a few messages stay small.
type ring struct {
	buf  []entry
	head int // index of the oldest entry
	n    int
}

// at returns the i-th oldest entry.
func (r *ring) at(i int) entry { return r.buf[(r.head+i)%len(r.buf)] }

// push appends e, dropping the oldest entry when limit are held.
func (r *ring) push(e entry, limit int) {
	if r.n == limit {
		r.buf[r.head] = e
		r.head = (r.head + 1) % len(r.buf)
		return
	}
	if r.n == len(r.buf) {
		grown := make([]entry, min(max(4, 2*len(r.buf)), limit))
		for i := range r.n {
			grown[i] = r.at(i)
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

// dropOldest forgets the oldest entry.
func (r *ring) dropOldest() {
	r.buf[r.head] = entry{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	if r.n == 0 {
		r.buf, r.head = nil, 0 // an idle topic's history costs nothing
	}
}

// clear forgets every entry.
func (r *ring) clear() { *r = ring{} }
