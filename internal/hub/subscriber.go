package hub

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Subscriber receives the messages of the topics it subscribes to, all of
// one tenant: one per connection. It owns no goroutine: the hub puts
// messages into its buffer (C) without waiting, and closes it with a reason
// (Done, Err) when it falls behind. Its methods are safe for concurrent
// use. Close it when the connection ends.
type Subscriber struct {
	h      *Hub
	tenant string
	ch     chan *Message
	done   chan struct{}
	once   sync.Once
	err    error       // the reason; written once, before closed is set
	closed atomic.Bool // read by the fan-out without a lock

	mu   sync.Mutex // serialises Subscribe, Unsubscribe and Close; guards subs
	subs []*subscription
}

// Replay is what Subscribe answers: what a resuming subscriber missed, or
// that it cannot be told.
type Replay struct {
	// Missed are the messages after the position resumed from, oldest
	// first; live messages follow on C with no message lost or repeated
	// in between. Shared: read them, never modify them.
	Missed []*Message
	// Gap is true when the history no longer reaches back to the position
	// resumed from, or the position belongs to another epoch (another
	// node, a restarted hub, a topic that was idle long enough to be
	// forgotten): messages were missed and Missed is empty. The client
	// must resynchronise (read the current state elsewhere), then go on
	// with the live messages.
	Gap bool
	// Position is where the subscription starts: the topic's newest offset
	// before the first live message, with its epoch. A client that
	// receives nothing may still resume from it.
	Position Position
}

// NewSubscriber returns a subscriber for tenant's topics. After Stop it
// returns one that is closed already, with ErrStopped.
func (h *Hub) NewSubscriber(tenant string) *Subscriber {
	s := &Subscriber{
		h:      h,
		tenant: tenant,
		ch:     make(chan *Message, h.cfg.SubscriberBuffer),
		done:   make(chan struct{}),
	}
	h.subsMu.Lock()
	if h.subs == nil {
		h.subsMu.Unlock()
		s.close(ErrStopped)
		return s
	}
	h.subs[s] = struct{}{}
	h.subsMu.Unlock()
	return s
}

// Subscribe starts delivering topic's messages to C. With since it first
// answers what the subscriber missed after that position, atomically with
// the registration: every message is either in Replay.Missed or comes on
// C, never both, never neither. Without since, only messages published
// from now on come. Subscribing to a topic twice is an error.
func (s *Subscriber) Subscribe(topic string, since *Position) (Replay, error) {
	if err := checkName("tenant", s.tenant); err != nil {
		return Replay{}, err
	}
	if err := checkName("topic", topic); err != nil {
		return Replay{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return Replay{}, s.err
	}
	for _, sub := range s.subs {
		if sub.t.key.name == topic {
			return Replay{}, fmt.Errorf("hub: %w: already subscribed to %q", ErrInvalid, topic)
		}
	}
	t := s.h.lockTopic(topicKey{tenant: s.tenant, name: topic}, true)
	t.trim(time.Now().Add(-s.h.cfg.HistoryTTL))
	r := t.replay(since)
	sub := &subscription{s: s, t: t}
	t.add(sub)
	t.mu.Unlock()
	s.subs = append(s.subs, sub)
	return r, nil
}

// Unsubscribe stops topic's messages; those already in C stay there.
// Unsubscribing from a topic not subscribed to does nothing.
func (s *Subscriber) Unsubscribe(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sub := range s.subs {
		if sub.t.key.name == topic {
			sub.t.mu.Lock()
			sub.t.remove(sub)
			sub.t.mu.Unlock()
			s.subs = append(s.subs[:i], s.subs[i+1:]...)
			return
		}
	}
}

// C returns the channel live messages come on, each topic's in order. It
// is never closed: watch Done too.
func (s *Subscriber) C() <-chan *Message { return s.ch }

// Done is closed when the subscriber is closed: by Close, by the hub as a
// slow consumer or to resynchronise, or by Stop. Err says why.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Err returns why the subscriber was closed (ErrClosed, an error wrapping
// ErrSlowConsumer, ErrResync, ErrStopped), or nil while it is open.
func (s *Subscriber) Err() error {
	if !s.closed.Load() {
		return nil
	}
	return s.err
}

// Tenant returns the tenant whose topics the subscriber receives.
func (s *Subscriber) Tenant() string { return s.tenant }

// Close closes the subscriber, if it is still open, with ErrClosed, and
// leaves all its topics. Always call it when the connection ends, even
// after Done: it is what frees the subscriber in every topic. Idempotent.
func (s *Subscriber) Close() {
	s.close(ErrClosed)
	s.mu.Lock()
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for _, sub := range subs {
		sub.t.mu.Lock()
		sub.t.remove(sub)
		sub.t.mu.Unlock()
	}
}

// close marks the subscriber closed with err, if it is open. It takes no
// topic lock, so the fan-out may call it holding one.
func (s *Subscriber) close(err error) {
	s.once.Do(func() {
		s.err = err
		s.closed.Store(true)
		close(s.done)
		s.h.subsMu.Lock()
		delete(s.h.subs, s)
		s.h.subsMu.Unlock()
	})
}
