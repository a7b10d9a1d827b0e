// Package hub is Switchyard's real-time hub: topics that browsers and
// services subscribe to, per-topic bounded history so that a client can
// resume where it left off, and fan-out to every subscriber of every node.
// The WebSocket and SSE endpoints build on it; the engine publishes its
// lifecycle events through it.
//
// # One order everywhere
//
// A message published on any node reaches the subscribers of every node,
// and all of them see a topic's messages in the same order. The hub gets
// that from the store (store.Hub): every process hears hub payloads in one
// total order (PostgreSQL delivers NOTIFYs to every listening session in
// commit order; SQLite's in-process bus serialises sends). So Publish never
// delivers locally: it sends, and every hub, the publisher's included,
// delivers what comes back from the store. Publish returns once the store
// has committed the send, so a successful Publish is on its way to every
// node.
//
// # Offsets and epochs
//
// Each hub numbers the messages of each topic itself as they arrive (1, 2,
// 3, …) and keeps the topic's history in memory. Offsets are therefore a
// node's own: every message also carries its topic's epoch, a random string
// chosen when the hub started (see Epoch) extended with a counter of the
// topics it created. A subscriber resumes from a Position {Offset, Epoch}
// (Centrifugo's stream position). A position from another epoch (another
// node, a restarted one, or a topic that was dropped when idle and has
// started again) cannot be matched, so it gets a gap and the client
// resynchronises, never wrong data. So does a position older than the
// history the hub still holds (Config.HistorySize, Config.HistoryTTL).
//
// # Batching
//
// Publish calls made while a send is under way are coalesced: the next send
// carries all of them in one payload (up to 1 MiB), so a burst costs
// a few store round trips, not one per message. A payload too large for a
// PostgreSQL notification is stored in a table by the store, and the hubs
// fetch it by id; a hub's ingest loop does that in order, off the store's
// listener goroutine, and sweeps stored payloads after payloadTTL.
//
// # Subscribers
//
// A Subscriber (one per connection) has one bounded buffer of messages for
// all its topics and no goroutine of its own in the hub. Fan-out never
// waits: a subscriber whose buffer is full is closed with a reason
// ("slow consumer"), so one stalled client never delays the others.
// Messages are shared by every subscriber of a topic and must not be
// modified.
//
// Only subscribing creates a topic on a node. A message to a topic that has
// no subscriber there, and had none within the history TTL, costs a map
// lookup and is not kept: no client can hold a position in it. So the
// engine may publish to job.{id} for every job without filling memory. A
// topic keeps its numbering and history for the history TTL after its last
// subscriber left, for clients that reconnect.
//
// If the store reports that notifications may have been lost
// (store.NotifyResync, after PostgreSQL's listener reconnected), the hub
// cannot know which messages it missed: it forgets every topic and closes
// its subscribers with ErrResync, so that clients reconnect, get a gap (the
// topics start again under new epochs) and resynchronise.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Errors callers test with errors.Is.
var (
	// ErrInvalid: a tenant, topic, type or data was malformed or too
	// large; nothing was published.
	ErrInvalid = errors.New("invalid argument")
	// ErrStopped: the hub was stopped (or not started yet). A Subscriber
	// closed by Stop reports it as its reason.
	ErrStopped = errors.New("hub stopped")
	// ErrSlowConsumer: a subscriber's buffer was full when a message came,
	// so it was closed. Its Err wraps this with the buffer's size:
	// "slow consumer: buffer of 64 messages full".
	ErrSlowConsumer = errors.New("slow consumer")
	// ErrResync: the store reported that notifications may have been lost,
	// so the subscriber's topics may miss messages; resubscribe (a resume
	// gets a gap) and resynchronise.
	ErrResync = errors.New("messages may have been lost; resubscribe")
	// ErrClosed: the subscriber was closed by its owner.
	ErrClosed = errors.New("subscriber closed")
)

// The sentinels that close subscribers have no package prefix: they are
// reasons, which the WebSocket and SSE endpoints pass on to clients.

// Config configures a Hub.
type Config struct {
	// Store carries messages between nodes (SQLite and PostgreSQL both
	// work). The store's Listen function must pass its notifications to
	// Notify. Required.
	Store store.Store
	// HistorySize is how many messages each topic keeps for resuming
	// subscribers. Default 1000.
	HistorySize int
	// HistoryTTL is how long a topic keeps a message for resuming
	// subscribers. Default 10m.
	HistoryTTL time.Duration
	// SubscriberBuffer is how many messages may wait for a subscriber
	// before it is closed as a slow consumer. Default 64.
	SubscriberBuffer int
	// MaxMessageBytes limits a message's data (JSON). Default 65536.
	MaxMessageBytes int
	// Logger receives the hub's rare operational messages. Default
	// slog.Default().
	Logger *slog.Logger
	// Registerer, if set, receives the hub's metrics. Default nil (none).
	Registerer prometheus.Registerer
}

const (
	defaultHistorySize      = 1000
	defaultHistoryTTL       = 10 * time.Minute
	defaultSubscriberBuffer = 64
	defaultMaxMessageBytes  = 64 << 10

	// maxBatchBytes caps one send's payload. Far above what fits in a
	// notification, so that a burst goes out in a few sends; a batch over
	// the notification limit travels as a stored payload.
	maxBatchBytes = 1 << 20
	// sendTimeout bounds one send to the store.
	sendTimeout = 10 * time.Second
	// payloadTTL is how long stored payloads are kept: every node fetches
	// one as soon as its notification arrives, so minutes are plenty.
	payloadTTL = 5 * time.Minute
	// maxBacklog bounds the notifications waiting for the ingest loop. A
	// hub that falls this far behind (a store that stopped answering
	// payload fetches) drops what comes next and resynchronises.
	maxBacklog = 1 << 16
	// idleTick is the wall-clock period periodic work lines up on, as in
	// the engine (internal/queue): an idle process wakes once per tick at
	// most, and its duties share the wake-up.
	idleTick = 8 * time.Second
)

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("hub: config: Store is required")
	}
	if c.HistorySize < 0 || c.HistoryTTL < 0 || c.SubscriberBuffer < 0 || c.MaxMessageBytes < 0 {
		return errors.New("hub: config: HistorySize, HistoryTTL, SubscriberBuffer and MaxMessageBytes must not be negative")
	}
	if c.HistorySize == 0 {
		c.HistorySize = defaultHistorySize
	}
	if c.HistoryTTL == 0 {
		c.HistoryTTL = defaultHistoryTTL
	}
	if c.SubscriberBuffer == 0 {
		c.SubscriberBuffer = defaultSubscriberBuffer
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = defaultMaxMessageBytes
	}
	if c.MaxMessageBytes > maxBatchBytes/2 {
		return fmt.Errorf("hub: config: MaxMessageBytes must be at most %d", maxBatchBytes/2)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Hub is one node's hub. Create it with New, then Start it; route the
// store's notifications to Notify.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	slowErr error // ErrSlowConsumer with the buffer size
	metrics *metrics

	// ctx is cancelled by Stop; it bounds the store calls in flight.
	ctx    context.Context
	cancel context.CancelFunc
	quit   chan struct{} // closed by Stop
	wg     sync.WaitGroup

	lifeMu  sync.Mutex
	started bool
	stopped bool

	// Topics. mu guards the map; each topic has its own lock for its
	// history and subscribers. Lock order: mu, then a topic's mu, then
	// subsMu.
	mu       sync.Mutex
	topics   map[topicKey]*topic
	epoch    string        // chosen by New
	topicGen atomic.Uint64 // topic epochs handed out, to make each unique

	// Subscribers, so that Stop can close every one.
	subsMu sync.Mutex
	subs   map[*Subscriber]struct{}

	// Ingest: notifications waiting for the ingest loop, in arrival order.
	inMu     sync.Mutex
	inQ      []store.Notification
	inClosed bool
	inWake   chan struct{}

	// Publishing: batches waiting to be sent, oldest first; the last one
	// takes new messages until it is full.
	sendMu      sync.Mutex
	pending     []*batch
	sendRunning bool // between Start and Stop
	sendWake    chan struct{}

	// Sweep: wakes the sweep loop when the first topic appears or the
	// first stored payload arrives.
	sweepKick chan struct{}
	lastRef   atomic.Int64 // unix nanos of the last stored payload heard, 0 if none pending
}

// New validates cfg and returns a Hub; Start starts it.
func New(cfg Config) (*Hub, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:       cfg,
		log:       cfg.Logger,
		slowErr:   fmt.Errorf("%w: buffer of %d messages full", ErrSlowConsumer, cfg.SubscriberBuffer),
		quit:      make(chan struct{}),
		topics:    map[topicKey]*topic{},
		subs:      map[*Subscriber]struct{}{},
		inWake:    make(chan struct{}, 1),
		sendWake:  make(chan struct{}, 1),
		sweepKick: make(chan struct{}, 1),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.epoch = newEpoch()
	if cfg.Registerer != nil {
		m, err := newMetrics(h, cfg.Registerer)
		if err != nil {
			return nil, err
		}
		h.metrics = m
	}
	return h, nil
}

// Start starts the hub's three goroutines: the ingest loop, which delivers
// what the store hears; the sender, which sends what is published; and the
// sweep, which trims idle topics and old stored payloads. It returns at
// once. A hub starts once.
func (h *Hub) Start(ctx context.Context) error {
	h.lifeMu.Lock()
	defer h.lifeMu.Unlock()
	switch {
	case h.stopped:
		return fmt.Errorf("hub: start: %w", ErrStopped)
	case h.started:
		return errors.New("hub: start: already started")
	}
	h.started = true
	h.sendMu.Lock()
	h.sendRunning = true
	h.sendMu.Unlock()
	h.wg.Add(3)
	go h.ingestLoop()
	go h.sendLoop()
	go h.sweepLoop()
	return nil
}

// Stop stops the hub: pending publishes fail with ErrStopped, and every
// subscriber is closed with ErrStopped. It waits for the hub's goroutines.
// Idempotent.
func (h *Hub) Stop() {
	h.lifeMu.Lock()
	if h.stopped {
		h.lifeMu.Unlock()
		return
	}
	h.stopped = true
	h.lifeMu.Unlock()

	h.sendMu.Lock()
	h.sendRunning = false
	h.sendMu.Unlock()
	h.inMu.Lock()
	h.inClosed = true
	h.inQ = nil
	h.inMu.Unlock()
	h.cancel()
	close(h.quit)
	h.wg.Wait()

	h.sendMu.Lock()
	pending := h.pending
	h.pending = nil
	h.sendMu.Unlock()
	for _, b := range pending {
		b.finish(ErrStopped)
	}

	h.subsMu.Lock()
	subs := make([]*Subscriber, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.subs = nil // NewSubscriber now hands out closed subscribers
	h.subsMu.Unlock()
	for _, s := range subs {
		s.close(ErrStopped)
	}
	h.mu.Lock()
	for k, t := range h.topics {
		t.mu.Lock()
		t.dead = true
		t.dropSubs()
		t.mu.Unlock()
		delete(h.topics, k)
	}
	h.mu.Unlock()
}

// Epoch returns the hub's epoch: a random string chosen when the hub was
// created. Every topic's epoch (Message.Epoch, Position.Epoch) is it
// followed by a number of its own, so that no two topics' lives on any
// node share an epoch.
func (h *Hub) Epoch() string { return h.epoch }

// Notify takes the store's notifications: route the store's Listen
// function here. It keeps hub payloads and resync reports for the ingest
// loop, in order, ignores every other kind, and never blocks.
func (h *Hub) Notify(n store.Notification) {
	if n.Kind != store.NotifyHub && n.Kind != store.NotifyResync {
		return
	}
	h.inMu.Lock()
	switch {
	case h.inClosed:
	case len(h.inQ) < maxBacklog:
		h.inQ = append(h.inQ, n)
	case h.inQ[len(h.inQ)-1].Kind != store.NotifyResync:
		// Too far behind: what comes now is dropped, and the ingest loop
		// resynchronises when it gets here.
		h.inQ = append(h.inQ, store.Notification{Kind: store.NotifyResync})
	}
	h.inMu.Unlock()
	signal(h.inWake)
}

// Stats is a snapshot of the hub's size.
type Stats struct {
	Topics      int // topics with subscribers, or with none for less than the history TTL
	Subscribers int // open subscribers
	History     int // messages held in every topic's history
}

// Stats counts the hub's topics, subscribers and history.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	ts := h.topicList()
	h.mu.Unlock()
	st := Stats{Topics: len(ts), Subscribers: h.subscriberCount()}
	for _, t := range ts {
		t.mu.Lock()
		st.History += t.hist.n
		t.mu.Unlock()
	}
	return st
}

func (h *Hub) subscriberCount() int {
	h.subsMu.Lock()
	defer h.subsMu.Unlock()
	return len(h.subs)
}

// HasTopics reports whether anyone subscribes to anything on this hub: a
// message is delivered only to a topic that exists, and only Subscribe
// creates topics.
func (h *Hub) HasTopics() bool { return h.topicCount() > 0 }

func (h *Hub) topicCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}

// topicList returns the topics; h.mu must be held.
func (h *Hub) topicList() []*topic {
	ts := make([]*topic, 0, len(h.topics))
	for _, t := range h.topics {
		ts = append(ts, t)
	}
	return ts
}

// lockTopic returns key's topic locked, creating it if create is set;
// without create it returns nil for a topic that does not exist. Only
// Subscribe creates topics: a topic nobody subscribed to has no history
// and no numbering to keep, because no client can hold a position in it,
// so a message to it costs one map lookup.
func (h *Hub) lockTopic(key topicKey, create bool) *topic {
	for {
		h.mu.Lock()
		t := h.topics[key]
		if t == nil {
			if !create {
				h.mu.Unlock()
				return nil
			}
			t = &topic{key: key, epoch: h.topicEpoch()}
			h.topics[key] = t
			if len(h.topics) == 1 {
				signal(h.sweepKick)
			}
		}
		h.mu.Unlock()
		t.mu.Lock()
		if !t.dead {
			return t
		}
		// Dropped between the lookup and the lock: look again.
		t.mu.Unlock()
	}
}

// resync forgets every topic after messages may have been lost: their
// subscribers are closed with ErrResync, and the topics start again with
// new epochs when subscribed to again, so resumes get gaps.
func (h *Hub) resync(why string) {
	h.mu.Lock()
	closed := 0
	for k, t := range h.topics {
		t.mu.Lock()
		for _, sub := range t.subs {
			if !sub.s.closed.Load() {
				sub.s.close(ErrResync)
				closed++
			}
		}
		t.dropSubs()
		t.dead = true
		t.mu.Unlock()
		delete(h.topics, k)
	}
	h.mu.Unlock()
	h.metrics.evicted(reasonResync, closed)
	h.log.Warn("hub: resynchronised: messages may have been lost", "reason", why, "subscribers_closed", closed)
}

// topicEpoch returns a new topic's epoch: unique, so that a topic dropped
// and created again never reuses its offsets.
func (h *Hub) topicEpoch() string {
	return h.epoch + "-" + strconv.FormatUint(h.topicGen.Add(1), 36)
}

// newEpoch returns a random epoch.
func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// signal wakes a loop waiting on c (buffered, capacity one) without
// blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
