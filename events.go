package switchyard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/queue"
	"github.com/switchyard-dev/switchyard/internal/store"
)

// Lifecycle events: the engine publishes every change of a job, a queue or
// a worker node to the built-in topics as it commits (DESIGN.md § Events
// the system emits). A message's Type is the event's name and its Data one
// of JobEventData, QueueEventData or Worker, as JSON.
//
//   - Job events go to the topics jobs, job.{id} and queue.{name} of the
//     job's tenant.
//   - Queue events go to queue.{name} only: jobs carries job events alone,
//     so that its subscribers can decode every message one way.
//   - Worker events go to the workers topic of the tenant the node was
//     configured with (Config.TenantID: a server's is "default"). Nodes
//     are infrastructure, not tenant data: a server that works every
//     tenant is announced to the instance's own tenant only.
//
// The node where a change happens publishes it. Events are best effort: the
// job path hands them to one publisher goroutine per client through a
// bounded buffer (Config.EventBuffer) and never waits for it; when the
// buffer is full, new events are dropped and counted in
// switchyard_events_dropped_total. The jobs' state itself is durable
// whatever happens to their events: a subscriber that must not miss a
// change reads the job (or the list) after subscribing, and again on a gap.
//
// One node publishes a job's events in the order the changes happened.
// When several nodes change one job (enqueued on one, run on another), each
// publishes its own, so the order across them is the order their sends
// reach the store; attempt and state tell them apart.
const (
	EventJobEnqueued   = queue.EventJobEnqueued   // enqueued, or brought back by RetryJob: available or scheduled
	EventJobStarted    = queue.EventJobStarted    // an attempt started (leased by a worker)
	EventJobProgress   = queue.EventJobProgress   // the running attempt set its progress
	EventJobSucceeded  = queue.EventJobSucceeded  // the attempt succeeded
	EventJobRetrying   = queue.EventJobRetrying   // the attempt failed (or its lease expired); retried at run_at
	EventJobDead       = queue.EventJobDead       // failed with no attempt left, discarded, or its last lease expired
	EventJobCancelled  = queue.EventJobCancelled  // cancelled
	EventJobDeleted    = queue.EventJobDeleted    // deleted (DeleteJob); state is the one it had
	EventQueuePaused   = queue.EventQueuePaused   // PauseQueue
	EventQueueResumed  = queue.EventQueueResumed  // ResumeQueue
	EventWorkerOnline  = queue.EventWorkerOnline  // a node started working (Start), or came back
	EventWorkerOffline = queue.EventWorkerOffline // a node stopped (Stop), or the leader found its heartbeats stopped
)

// Built-in topics of lifecycle events; JobTopic and QueueTopic name the
// per-job and per-queue ones.
const (
	TopicJobs    = "jobs"
	TopicWorkers = "workers"
)

// JobTopic is the topic of one job's events: job.{id}.
func JobTopic(id string) string { return "job." + id }

// QueueTopic is the topic of one queue's job and queue events:
// queue.{name}.
func QueueTopic(name string) string { return "queue." + name }

// JobEventData is the data of a job event: small, without args, results
// or the error history (read the job for those).
type JobEventData struct {
	ID          string `json:"id"`
	Queue       string `json:"queue"`
	Kind        string `json:"kind"`
	State       string `json:"state"` // the job's state after the change
	Attempt     int    `json:"attempt"`
	MaxAttempts int    `json:"max_attempts"`
	// Error is the failed attempt's error (job.retrying, job.dead), cut to
	// its first KiB.
	Error string `json:"error,omitempty"`
	// RunAt is when the job runs next: the retry of job.retrying (by this
	// node's clock, the store's own may differ slightly), or the run_at
	// of a job enqueued scheduled.
	RunAt *time.Time `json:"run_at,omitempty"`
	// Progress is what job.progress set, when it is at most 4 KiB of
	// JSON; larger progress is left out (read the job).
	Progress json.RawMessage `json:"progress,omitempty"`
}

// QueueEventData is the data of a queue event.
type QueueEventData struct {
	Queue  string `json:"queue"`
	Paused bool   `json:"paused"`
}

// Worker states.
const (
	WorkerOnline  = "online"
	WorkerOffline = "offline"
)

// Worker is a node running the job engine (a started Client, a server), as
// the registry knows it, and the data of worker events.
type Worker struct {
	ID       string `json:"id"`
	State    string `json:"state"` // WorkerOnline or WorkerOffline
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	// Queues it was configured with by name.
	Queues []string `json:"queues"`
	// AllQueues: it also works every other queue it finds.
	AllQueues bool `json:"all_queues"`
	// AllTenants: it works the queues of every tenant.
	AllTenants bool `json:"all_tenants"`
	// StartedAt is when it last registered, LastSeenAt its last heartbeat
	// (every LeaderTTL/3), OfflineAt when it stopped or was found silent
	// for longer than its WorkerTimeout. Database clock.
	StartedAt  time.Time  `json:"started_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	OfflineAt  *time.Time `json:"offline_at"`
}

func workerFromNode(n *store.NodeInfo) Worker {
	w := Worker{
		ID: n.ID, State: WorkerOnline, Hostname: n.Hostname, PID: n.PID, Queues: n.Queues,
		AllQueues: n.AllQueues, AllTenants: n.AllTenants, StartedAt: n.StartedAt, LastSeenAt: n.LastSeenAt,
	}
	if w.Queues == nil {
		w.Queues = []string{}
	}
	if !n.OfflineAt.IsZero() {
		t := n.OfflineAt
		w.State, w.OfflineAt = WorkerOffline, &t
	}
	return w
}

// Workers lists the worker nodes of this client's tenant (those configured
// with it; a server's nodes are the default tenant's), online and offline,
// by id. A node that stops gracefully leaves the list; one that died stays
// in it, offline, for a day.
func (c *Client) Workers(ctx context.Context) ([]Worker, error) {
	ns, err := c.store.ListNodes(ctx, c.cfg.TenantID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: list workers: %w", err)
	}
	out := make([]Worker, len(ns))
	for i := range ns {
		out[i] = workerFromNode(&ns[i])
	}
	return out, nil
}

const (
	// defaultEventBuffer is Config.EventBuffer's default: two seconds of
	// events at the default rate, and a whole batch enqueue (10,000 jobs)
	// at once.
	defaultEventBuffer = 10000
	// defaultEventRate is Config.EventRate's default.
	defaultEventRate = 5000
	// eventBurst is how far ahead of its rate the publisher may run.
	eventBurst = 100 * time.Millisecond
	// eventGather is how long the publisher lets events gather after the
	// first arrives, so that under load it wakes a few hundred times a
	// second rather than once per event (each wake-up takes the CPU from a
	// worker), at the cost of a few milliseconds of event latency.
	eventGather = 2 * time.Millisecond
	// eventChunk caps the events in one hub.PublishBatch call.
	eventChunk = 1024
	// maxEventError and maxEventProgress bound what an event carries.
	maxEventError    = 1024
	maxEventProgress = 4096
)

// eventPublisher publishes the lifecycle events of one client (and its
// tenant views) to the hub. Producers append to an ordered buffer under a
// lock and never wait; one goroutine takes what is ready, encodes it and
// publishes it with hub.PublishBatch, batching whatever accumulated while
// the previous send was under way.
//
// The buffer is a queue of segments. A held segment (queue.EventSink.Hold)
// is a place reserved before a write commits; nothing behind it is
// published until it is released, so events stay in the order of the
// changes even when the next change (a worker starting the job just
// enqueued) is seen before the writer's goroutine runs again.
type eventPublisher struct {
	hub     *hub.Hub
	log     *slog.Logger
	limit   int
	rate    float64            // events per second; <= 0: no cap
	dropped prometheus.Counter // nil without a Registerer
	drops   atomic.Int64

	mu     sync.Mutex
	segs   []*eventSeg
	queued int // events in segs
	closed bool
	wake   chan struct{}
	quit   chan struct{}
	done   chan struct{}

	// sqliteFile is the SQLite file's absolute path, "" on PostgreSQL.
	sqliteFile string
	// heard is when nobodyListens last found a topic (publisher
	// goroutine's).
	heard time.Time
	// paced is when the events published so far will have taken their
	// share of the rate (publisher goroutine's).
	paced time.Time

	// router, if set, is offered every event first, to route the engine's
	// own events through the rules (systemevents.go), whatever the rate.
	router *systemRouter

	// The publisher goroutine's own.
	batch       []queue.Event
	out         []hub.Outgoing
	buf         []byte
	queueTopics map[string]string
}

type eventSeg struct {
	evs  []queue.Event
	held bool
}

func newEventPublisher(h *hub.Hub, limit, rate int, log *slog.Logger, reg prometheus.Registerer) (*eventPublisher, error) {
	p := &eventPublisher{
		hub: h, log: log, limit: limit, rate: float64(rate),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		queueTopics: map[string]string{},
	}
	if reg != nil {
		c := prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_events_dropped_total",
			Help: "Lifecycle events dropped because they came faster than this client publishes them (Config.EventRate) and its buffer (Config.EventBuffer) was full. Live events are best effort; job state is durable.",
		})
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("switchyard: events: metrics: %w", err)
			}
			c = are.ExistingCollector.(prometheus.Counter)
		}
		p.dropped = c
	}
	return p, nil
}

func (p *eventPublisher) start() { go p.loop() }

// stop publishes what is ready (for up to a few seconds) and stops.
// Idempotent.
func (p *eventPublisher) stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.quit)
	<-p.done
}

func (p *eventPublisher) drop(n int) {
	p.drops.Add(int64(n))
	if p.dropped != nil {
		p.dropped.Add(float64(n))
	}
}

// Add implements queue.EventSink.
func (p *eventPublisher) Add(evs ...queue.Event) {
	if len(evs) == 0 {
		return
	}
	if p.router != nil {
		p.router.offer(evs)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if room := p.limit - p.queued; len(evs) > room {
		p.drop(len(evs) - max(room, 0))
		evs = evs[:max(room, 0)]
		if len(evs) == 0 {
			p.mu.Unlock()
			return
		}
	}
	var seg *eventSeg
	if k := len(p.segs); k > 0 && !p.segs[k-1].held {
		seg = p.segs[k-1]
	} else {
		seg = &eventSeg{}
		p.segs = append(p.segs, seg)
	}
	seg.evs = append(seg.evs, evs...)
	p.queued += len(evs)
	p.mu.Unlock()
	signalEvents(p.wake)
}

// Hold implements queue.EventSink. release takes ownership of evs.
func (p *eventPublisher) Hold() (release func(evs []queue.Event)) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return func([]queue.Event) {}
	}
	seg := &eventSeg{held: true}
	p.segs = append(p.segs, seg)
	p.mu.Unlock()
	return func(evs []queue.Event) {
		if p.router != nil {
			p.router.offer(evs)
		}
		p.mu.Lock()
		seg.held = false
		if room := p.limit - p.queued; len(evs) > room {
			p.drop(len(evs) - max(room, 0))
			evs = evs[:max(room, 0)]
		}
		seg.evs = evs
		p.queued += len(evs)
		p.mu.Unlock()
		signalEvents(p.wake)
	}
}

func signalEvents(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// take moves the events ready to publish (the segments before the first
// held one) into p.batch.
func (p *eventPublisher) take() {
	p.batch = p.batch[:0]
	p.mu.Lock()
	i := 0
	for ; i < len(p.segs) && !p.segs[i].held; i++ {
		p.batch = append(p.batch, p.segs[i].evs...)
		p.segs[i] = nil
	}
	p.segs = append(p.segs[:0], p.segs[i:]...)
	p.queued -= len(p.batch)
	p.mu.Unlock()
}

func (p *eventPublisher) loop() {
	defer close(p.done)
	gather := time.NewTimer(0)
	<-gather.C
	for {
		select {
		case <-p.quit:
			p.final()
			return
		case <-p.wake:
		}
		gather.Reset(eventGather)
		select {
		case <-p.quit:
			gather.Stop()
			p.final()
			return
		case <-gather.C:
		}
		for {
			p.take()
			if len(p.batch) == 0 {
				break
			}
			if p.nobodyListens() {
				clear(p.batch)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			p.publish(ctx)
			cancel()
		}
		if cap(p.batch) > 4*eventChunk {
			p.batch, p.out = nil, nil // a burst's buffers are not kept for ever
		}
	}
}

// final publishes what is ready when the publisher stops; what a hold
// still keeps back is lost.
func (p *eventPublisher) final() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.take()
	if len(p.batch) > 0 && !p.nobodyListens() {
		p.publish(ctx)
	}
}

// publish sends p.batch to the hub in chunks, at the rate.
func (p *eventPublisher) publish(ctx context.Context) {
	for evs := p.batch; len(evs) > 0; {
		n := min(len(evs), eventChunk)
		if !p.pace(n) {
			p.drop(len(evs))
			clear(evs)
			return
		}
		p.publishChunk(ctx, evs[:n])
		clear(evs[:n]) // progress and node data
		evs = evs[n:]
	}
}

func (p *eventPublisher) publishChunk(ctx context.Context, evs []queue.Event) {
	// Every message of an event shares its data: one encoding, and one
	// backing buffer for the whole chunk (the hub copies what it sends).
	p.out = p.out[:0]
	buf := p.buf[:0]
	type span struct{ from, to int }
	spans := make([]span, len(evs))
	for i := range evs {
		from := len(buf)
		buf = appendEventData(buf, &evs[i])
		spans[i] = span{from, len(buf)}
	}
	for i := range evs {
		ev := &evs[i]
		data := json.RawMessage(buf[spans[i].from:spans[i].to:spans[i].to])
		switch {
		case ev.Node != nil:
			p.out = append(p.out, hub.Outgoing{Tenant: ev.TenantID, Topic: TopicWorkers, Type: ev.Type, Data: data})
		case ev.JobID == 0:
			p.out = append(p.out, hub.Outgoing{Tenant: ev.TenantID, Topic: p.queueTopic(ev.Queue), Type: ev.Type, Data: data})
		default:
			p.out = append(p.out,
				hub.Outgoing{Tenant: ev.TenantID, Topic: TopicJobs, Type: ev.Type, Data: data},
				hub.Outgoing{Tenant: ev.TenantID, Topic: "job." + strconv.FormatInt(ev.JobID, 10), Type: ev.Type, Data: data},
				hub.Outgoing{Tenant: ev.TenantID, Topic: p.queueTopic(ev.Queue), Type: ev.Type, Data: data})
		}
	}
	p.buf = buf[:0]
	if cap(p.buf) > 1<<20 {
		p.buf = nil
	}
	err := p.hub.PublishBatch(ctx, p.out)
	clear(p.out)
	switch {
	case err == nil:
	case errors.Is(err, hub.ErrStopped):
		p.drop(len(evs))
	default:
		// One bad message fails its whole batch; none should be (names
		// and data are validated before they get here).
		p.drop(len(evs))
		p.log.Warn("switchyard: publish lifecycle events", "err", err, "events", len(evs))
	}
}

// pace waits until n more events keep within the rate, give or take
// eventBurst. It reports false if the publisher is stopping meanwhile.
// Waiting here is what makes the buffer fill, and new events be dropped,
// when they come faster than the rate.
func (p *eventPublisher) pace(n int) bool {
	if p.rate <= 0 {
		return true
	}
	now := time.Now()
	p.paced = later(p.paced, now).Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	wait := p.paced.Sub(now) - eventBurst
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.quit:
		return false
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// localHubs lists, per SQLite file, the hubs of this process's clients on
// it. On SQLite they are the only hubs that hear the file's hub messages
// (the store's in-process bus carries them; other processes hear none).
var localHubs = struct {
	sync.Mutex
	m map[string][]*hub.Hub
}{m: map[string][]*hub.Hub{}}

func addLocalHub(file string, h *hub.Hub) {
	localHubs.Lock()
	defer localHubs.Unlock()
	localHubs.m[file] = append(localHubs.m[file], h)
}

func removeLocalHub(file string, h *hub.Hub) {
	localHubs.Lock()
	defer localHubs.Unlock()
	hs := slices.DeleteFunc(localHubs.m[file], func(x *hub.Hub) bool { return x == h })
	if len(hs) == 0 {
		delete(localHubs.m, file)
	} else {
		localHubs.m[file] = hs
	}
}

// nobodyListens reports whether no hub that could deliver the events has
// a topic at all, so publishing them would only cost: a hub drops a
// message to a topic it does not have, and only Subscribe creates topics.
// Knowable on SQLite only, where every such hub is in this process; on
// PostgreSQL other nodes' hubs may have subscribers, so it answers false.
//
// Skipping loses nothing a subscriber could see: the events were taken
// after their changes committed, so a subscription made after this check
// began after those commits, and a client that subscribes and then reads
// the state (as it must, to start) reads them.
//
// Only "nobody" needs to be fresh: having found topics, it answers false
// for a second without looking again.
func (p *eventPublisher) nobodyListens() bool {
	if p.sqliteFile == "" {
		return false
	}
	now := time.Now()
	if now.Sub(p.heard) < time.Second {
		return false
	}
	if localListeners(p.sqliteFile) {
		p.heard = now
		return false
	}
	return true
}

// localListeners reports whether a hub of this process on the SQLite file
// has a topic: on SQLite those are the only hubs that hear the file's
// messages.
func localListeners(file string) bool {
	localHubs.Lock()
	defer localHubs.Unlock()
	for _, h := range localHubs.m[file] {
		if h.HasTopics() {
			return true
		}
	}
	return false
}

// queueTopic returns queue.{name}, reusing the string.
func (p *eventPublisher) queueTopic(name string) string {
	t, ok := p.queueTopics[name]
	if !ok {
		if len(p.queueTopics) >= 1024 {
			clear(p.queueTopics)
		}
		t = QueueTopic(name)
		p.queueTopics[name] = t
	}
	return t
}

// appendEventData appends ev's data as compact JSON. Job events, the hot
// ones, are written by hand; the others are rare.
func appendEventData(buf []byte, ev *queue.Event) []byte {
	switch {
	case ev.Node != nil:
		w := workerFromNode(ev.Node)
		if ev.Type == EventWorkerOffline && w.OfflineAt == nil {
			// Stopped gracefully: its row is gone, and it went now.
			now := time.Now().UTC()
			w.State, w.OfflineAt = WorkerOffline, &now
		}
		b, err := json.Marshal(w)
		if err != nil {
			return append(buf, "null"...)
		}
		return append(buf, b...)
	case ev.JobID == 0:
		b, _ := json.Marshal(QueueEventData{Queue: ev.Queue, Paused: ev.Type == EventQueuePaused})
		return append(buf, b...)
	}
	buf = append(buf, `{"id":"`...)
	buf = strconv.AppendInt(buf, ev.JobID, 10)
	buf = append(buf, `","queue":`...)
	buf = appendJSONString(buf, ev.Queue)
	buf = append(buf, `,"kind":`...)
	buf = appendJSONString(buf, ev.Kind)
	buf = append(buf, `,"state":`...)
	buf = appendJSONString(buf, ev.State)
	buf = append(buf, `,"attempt":`...)
	buf = strconv.AppendInt(buf, int64(ev.Attempt), 10)
	buf = append(buf, `,"max_attempts":`...)
	buf = strconv.AppendInt(buf, int64(ev.MaxAttempts), 10)
	if ev.Error != "" {
		buf = append(buf, `,"error":`...)
		buf = appendJSONString(buf, truncateUTF8(ev.Error, maxEventError))
	}
	if !ev.RunAt.IsZero() {
		buf = append(buf, `,"run_at":"`...)
		buf = ev.RunAt.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, '"')
	}
	if len(ev.Progress) > 0 && len(ev.Progress) <= maxEventProgress && json.Valid(ev.Progress) {
		buf = append(buf, `,"progress":`...)
		buf = append(buf, ev.Progress...)
	}
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string, replacing invalid UTF-8 as
// encoding/json does.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}

// truncateUTF8 cuts s to at most n bytes, at a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
