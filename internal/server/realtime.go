package server

// Live updates: the hub's topics over WebSocket (realtime_ws.go) and
// Server-Sent Events (realtime_sse.go), publishing over HTTP, subscription
// tokens, and what they share: who may read and publish what, connection
// limits, and the JSON objects both transports carry.
//
// The server sends these JSON objects (a WebSocket message carries one or
// more, one per line; an SSE event one):
//
//	{"type":"message","topic","offset","epoch","event","data","time"}
//	{"type":"subscribed","id","topic","position":{"offset","epoch"},"gap"}
//	{"type":"gap","topic","since":{…},"position":{…}}
//	{"type":"unsubscribed","id","topics"}
//	{"type":"ack","id"}   {"type":"pong","id"}
//	{"type":"error","id","code","message"[,"topic"]}
//	{"type":"close","code","reason"}              (SSE only; WebSocket closes)

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/hub"
)

// RealtimeConfig limits the live-update endpoints (GET /v1/ws and GET
// /v1/stream) on one node. How many messages may wait for one connection
// before it is dropped as a slow consumer is the hub's setting
// (switchyard.Config.Topics.SubscriberBuffer).
type RealtimeConfig struct {
	// MaxConnectionsPerIP bounds the open WebSocket and SSE connections
	// of one client IP on this node; more answer 429. Default 1000;
	// negative for no limit.
	MaxConnectionsPerIP int
	// MaxConnectionsPerCredential bounds the open connections of one API
	// key, one user, or one subscription token subject on this node; more
	// answer 429. Default 1000; negative for no limit.
	MaxConnectionsPerCredential int
	// MaxMessageBytes bounds one WebSocket message from a client; a
	// larger one closes the connection with 1009 (message too big).
	// Default 65536.
	MaxMessageBytes int64
	// MaxSubscriptions bounds the topics one connection reads at once.
	// Default 100.
	MaxSubscriptions int
	// KeepAlive is how often the server pings a WebSocket connection
	// (answered by a pong) and writes a comment on an SSE stream, so that
	// proxies keep idle connections open. Default 30s; negative for none.
	KeepAlive time.Duration
	// IdleTimeout closes a WebSocket connection from which nothing, not
	// even a pong, came for this long (close code 4002). Default 90s;
	// negative for none.
	IdleTimeout time.Duration
	// Coalesce bounds how long a busy connection's messages wait to go out
	// together. A connection that receives messages faster than its
	// coalescing window writes at most once per window, everything at
	// once; the window starts at an eighth of Coalesce and doubles, up to
	// Coalesce, while messages pile up for the connection (the node is
	// too busy to write that often), halving again as they stop. A
	// connection that was quiet writes at once. This saves the system
	// calls and wake-ups that would otherwise swamp a node when many
	// subscribers read a busy topic. Default 20ms; negative for none.
	Coalesce time.Duration
}

const (
	defaultMaxConnsPerIP   = 1000
	defaultMaxConnsPerCred = 1000
	defaultLiveMessage     = 64 << 10
	defaultMaxSubs         = 100
	defaultKeepAlive       = 30 * time.Second
	defaultIdleTimeout     = 90 * time.Second
	defaultCoalesce        = 20 * time.Millisecond

	// liveWriteTimeout bounds one write to a client (a write may wait
	// between half of it and all of it: see deadlineConn.Write). A client
	// whose socket takes nothing for that long is gone or stalled; the hub
	// has usually dropped it as a slow consumer well before.
	liveWriteTimeout = 10 * time.Second
	// livePublishTimeout bounds one publish from a WebSocket client.
	livePublishTimeout = 10 * time.Second
	// liveBatchBytes is about how much one write carries when messages
	// queue up for a connection: what waits goes out together, so a
	// client that falls behind costs fewer system calls, not more.
	liveBatchBytes = 16 << 10
)

func (c RealtimeConfig) withDefaults() RealtimeConfig {
	if c.MaxConnectionsPerIP == 0 {
		c.MaxConnectionsPerIP = defaultMaxConnsPerIP
	}
	if c.MaxConnectionsPerCredential == 0 {
		c.MaxConnectionsPerCredential = defaultMaxConnsPerCred
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = defaultLiveMessage
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = defaultMaxSubs
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.Coalesce == 0 {
		c.Coalesce = defaultCoalesce
	}
	return c
}

// realtime is a server's live-connection state: connection counts for the
// limits, and the signal that closes every connection at shutdown.
type realtime struct {
	cfg RealtimeConfig
	log *slog.Logger

	mu      sync.Mutex
	perIP   map[netip.Addr]int
	perCred map[string]int
	closing bool
	quit    chan struct{} // closed by CloseRealtime
	wg      sync.WaitGroup

	conns   *prometheus.GaugeVec
	refused *prometheus.CounterVec
}

func newRealtime(cfg RealtimeConfig, log *slog.Logger) *realtime {
	rt := &realtime{
		cfg: cfg, log: log,
		perIP: map[netip.Addr]int{}, perCred: map[string]int{},
		quit: make(chan struct{}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_realtime_connections",
			Help: "Open live-update connections on this node, by transport (websocket, sse).",
		}, []string{"transport"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_realtime_refused_total",
			Help: "Live-update connections refused by a limit, by limit (ip, credential).",
		}, []string{"limit"}),
	}
	return rt
}

func (rt *realtime) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{rt.conns, rt.refused} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("server: realtime metrics: %w", err)
		}
	}
	return nil
}

// CloseRealtime closes every WebSocket (1001, going away) and SSE stream
// (a close event) and refuses new ones (503), then waits for their
// handlers to finish. Call it when the server shuts down: http.Server's
// Shutdown does not wait for hijacked connections and would wait for SSE
// streams until its deadline (serve registers it with RegisterOnShutdown).
// Idempotent.
func (s *Server) CloseRealtime() {
	rt := s.realtime
	rt.mu.Lock()
	if !rt.closing {
		rt.closing = true
		close(rt.quit)
	}
	rt.mu.Unlock()
	rt.wg.Wait()
}

// errTooMany refuses a connection over a limit.
type errTooMany struct{ msg string }

func (e errTooMany) Error() string { return e.msg }

// acquire counts a new connection from ip with credential cred, or refuses
// it over a limit; release undoes it.
func (rt *realtime) acquire(ip netip.Addr, cred, transport string) (release func(), err error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closing {
		return nil, errShuttingDown
	}
	if l := rt.cfg.MaxConnectionsPerIP; l > 0 && rt.perIP[ip] >= l {
		rt.refused.WithLabelValues("ip").Inc()
		return nil, errTooMany{fmt.Sprintf("too many live connections from %s: at most %d per client IP on this node", ip, l)}
	}
	if l := rt.cfg.MaxConnectionsPerCredential; l > 0 && rt.perCred[cred] >= l {
		rt.refused.WithLabelValues("credential").Inc()
		return nil, errTooMany{fmt.Sprintf("too many live connections with this credential: at most %d on this node", l)}
	}
	rt.perIP[ip]++
	rt.perCred[cred]++
	rt.wg.Add(1)
	g := rt.conns.WithLabelValues(transport)
	g.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			rt.mu.Lock()
			if rt.perIP[ip]--; rt.perIP[ip] <= 0 {
				delete(rt.perIP, ip)
			}
			if rt.perCred[cred]--; rt.perCred[cred] <= 0 {
				delete(rt.perCred, cred)
			}
			rt.mu.Unlock()
			g.Dec()
			rt.wg.Done()
		})
	}, nil
}

var errShuttingDown = errors.New("the server is shutting down")

// liveCaller is who opened a live connection: an API key or user (caller),
// or a subscription token.
type liveCaller struct {
	caller *caller                       // nil for a subscription token
	token  *switchyard.SubscriptionToken // set for a subscription token
	tenant string
	client *switchyard.Client // scoped to tenant
	// limitKey names the credential for connection limits and rate limits.
	limitKey string
}

// canRead reports whether the caller may read topic: any topic of the
// tenant for an API key or user (viewer or better), the token's topics for
// a subscription token.
func (lc *liveCaller) canRead(topic string) bool {
	return lc.token == nil || lc.token.Allows(topic)
}

// canPublish reports whether the caller may publish at all: operators and
// better, never a subscription token.
func (lc *liveCaller) canPublish() bool {
	return lc.caller != nil && switchyard.RoleAtLeast(lc.caller.role, operator)
}

// checkPublish decides a publish to topic.
func (lc *liveCaller) checkPublish(topic string) error {
	if err := switchyard.CheckTopicName(topic); err != nil {
		return err
	}
	if !lc.canPublish() {
		role := "a subscription token"
		if lc.caller != nil {
			role = describeRole(lc.caller)
		}
		return fmt.Errorf("%w: publishing needs the operator role; you have %s", switchyard.ErrPermissionDenied, role)
	}
	return checkUserTopic(topic)
}

// checkUserTopic refuses publishing to a built-in topic.
func checkUserTopic(topic string) error {
	if switchyard.IsBuiltinTopic(topic) {
		return fmt.Errorf("%w: %s is a built-in topic (jobs, job.*, queue.*, workflow.*, events, events.*, workers), which only the engine publishes to", switchyard.ErrPermissionDenied, topic)
	}
	return nil
}

// checkRead decides reading topic.
func (lc *liveCaller) checkRead(topic string) error {
	if err := switchyard.CheckTopicName(topic); err != nil {
		return err
	}
	if !lc.canRead(topic) {
		return fmt.Errorf("%w: this subscription token does not grant topic %s", switchyard.ErrPermissionDenied, topic)
	}
	return nil
}

// authenticateLive authenticates a WebSocket or SSE request, answering the
// refusal itself. Browsers cannot set headers on a WebSocket or an
// EventSource, so the credential may also come as ?token= and the tenant
// as ?tenant=. A subscription token reads its topics; an API key or access
// token reads the tenant's topics with the viewer role or better.
func (s *Server) authenticateLive(w http.ResponseWriter, r *http.Request) (*liveCaller, bool) {
	q := r.URL.Query()
	secret, tenant := q.Get("token"), q.Get("tenant")
	if secret != "" && r.Header.Get("Authorization") != "" {
		writeError(w, r, http.StatusBadRequest, codeInvalidArgument, "give the credential once: the Authorization header or the token parameter")
		return nil, false
	}
	if h := r.Header.Get(tenantHeader); h != "" {
		if tenant != "" && tenant != h {
			writeError(w, r, http.StatusBadRequest, codeInvalidArgument, "the tenant parameter and the "+tenantHeader+" header differ")
			return nil, false
		}
		tenant = h
	}
	if secret == "" {
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, rest, ok := strings.Cut(h, " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				secret = strings.TrimSpace(rest)
			}
		}
	}

	if secret != "" && switchyard.IsSubscriptionToken(secret) {
		tok, err := s.c.VerifySubscriptionToken(r.Context(), secret)
		if err != nil {
			s.fail(w, r, err)
			return nil, false
		}
		if tenant != "" && tenant != tok.TenantID {
			s.fail(w, r, fmt.Errorf("%w: tenant %q not found", switchyard.ErrNotFound, tenant))
			return nil, false
		}
		lc := &liveCaller{token: tok, tenant: tok.TenantID, client: s.c.ForTenant(tok.TenantID),
			limitKey: "sub:" + tok.TenantID + "/" + tok.Subject}
		l := s.cfg.RateLimit
		if t, err := s.c.Tenant(r.Context(), tok.TenantID); err == nil && t.RateLimit != nil {
			l = *t.RateLimit
		}
		if !s.limit(w, r, lc.limitKey, l) {
			return nil, false
		}
		return lc, true
	}

	// An API key or access token: exactly as every other route takes it,
	// from a copy of the request carrying the parameters as headers.
	ar := r
	if q.Has("token") || q.Has("tenant") {
		ar = r.Clone(r.Context())
		if secret != "" {
			ar.Header.Set("Authorization", "Bearer "+secret)
		}
		if tenant != "" {
			ar.Header.Set(tenantHeader, tenant)
		}
	}
	c, err := s.authenticate(ar)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	stateOf(r.Context()).caller = c
	if err := s.enterTenant(ar, c); err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if !s.limitCaller(w, r, c) {
		return nil, false
	}
	if !switchyard.RoleAtLeast(c.role, viewer) {
		writeError(w, r, http.StatusForbidden, codePermissionDenied,
			fmt.Sprintf("%s %s needs the %s role; you have %s", r.Method, r.URL.Path, viewer, describeRole(c)))
		return nil, false
	}
	return &liveCaller{caller: c, tenant: c.tenant, client: c.client, limitKey: c.limitKey()}, true
}

// acquireLive counts a connection against the limits, answering 429 or
// 503 itself.
func (s *Server) acquireLive(w http.ResponseWriter, r *http.Request, lc *liveCaller, transport string) (func(), bool) {
	release, err := s.realtime.acquire(s.clientIP(r), lc.limitKey, transport)
	var tooMany errTooMany
	switch {
	case err == nil:
		return release, true
	case errors.As(err, &tooMany):
		w.Header().Set("Retry-After", "1")
		writeError(w, r, http.StatusTooManyRequests, codeRateLimited, tooMany.msg)
	default:
		writeError(w, r, http.StatusServiceUnavailable, codeUnavailable, err.Error())
	}
	return nil, false
}

// publishLimit takes one token from the caller's request budget for a
// publish made over a WebSocket, as an HTTP request would.
func (s *Server) publishLimit(ctx context.Context, lc *liveCaller) error {
	if lc.caller == nil {
		return nil
	}
	l := s.cfg.RateLimit
	if t, err := s.c.Tenant(ctx, lc.tenant); err == nil && t.RateLimit != nil {
		l = *t.RateLimit
	}
	if l.RequestsPerSecond <= 0 {
		return nil
	}
	d, err := s.c.RateLimit(ctx, lc.caller.limitKey()+"@"+lc.tenant, l)
	if err != nil || d.Allowed {
		return nil // the limiter fails open
	}
	return errRateLimited{fmt.Sprintf("rate limit of %g requests/s (burst %d) exceeded; retry in %ds", l.RequestsPerSecond, l.Burst, max(1, ceilSeconds(d.RetryAfter)))}
}

type errRateLimited struct{ msg string }

func (e errRateLimited) Error() string { return e.msg }

// liveError is the code and message of an error reply, as the HTTP error
// shape would give them.
func (s *Server) liveError(err error) (code, message string) {
	var rl errRateLimited
	switch {
	case errors.As(err, &rl):
		return codeRateLimited, rl.msg
	case errors.Is(err, switchyard.ErrInvalidArgument):
		return codeInvalidArgument, clientMessage(err, switchyard.ErrInvalidArgument)
	case errors.Is(err, switchyard.ErrPermissionDenied):
		return codePermissionDenied, clientMessage(err, switchyard.ErrPermissionDenied)
	case errors.Is(err, switchyard.ErrNotFound):
		return codeNotFound, clientMessage(err, switchyard.ErrNotFound)
	case errors.Is(err, hub.ErrStopped):
		return codeUnavailable, errShuttingDown.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return codeUnavailable, "timed out"
	}
	s.log.Error("server: live connection: internal error", "err", err)
	return codeInternal, "internal error; see the server log"
}

// closeReason turns why the hub closed a subscriber into a WebSocket close
// code and reason (also sent as an SSE close event).
func closeReason(err error) (code int, reason string) {
	switch {
	case errors.Is(err, hub.ErrSlowConsumer):
		return closeSlowConsumer, err.Error()
	case errors.Is(err, hub.ErrResync):
		return closeResync, hub.ErrResync.Error()
	case errors.Is(err, hub.ErrStopped):
		return closeGoingAway, "server shutting down"
	}
	return closeInternal, "internal error"
}

// Close codes of the live protocol: 1001 and 1011 are RFC 6455's; the
// 4000s are Switchyard's.
const (
	closeNormal        = 1000
	closeGoingAway     = 1001 // the server shuts down
	closeInternal      = 1011
	closeSlowConsumer  = 4000 // messages came faster than the client took them
	closeResync        = 4001 // messages may have been lost: reconnect and resume (expect gaps)
	closeIdleTimeout   = 4002 // nothing came from the client for the idle timeout
	closeReasonMaxSize = 123  // RFC 6455: a close frame's reason
)

// topicPos is what a connection has sent of one topic: the epoch and the
// newest offset, so that nothing is sent twice.
type topicPos struct {
	epoch string
	last  uint64
}

// wants reports whether m is news for the connection, and records it.
func (p *topicPos) wants(m *hub.Message) bool {
	if m.Epoch == p.epoch && m.Offset <= p.last {
		return false // already sent: left over from an earlier subscription
	}
	p.epoch, p.last = m.Epoch, m.Offset
	return true
}

// Encoding. A message reaches every subscriber of its topic on the node as
// one shared *hub.Message, so its JSON is made once and shared too: a
// small table, indexed by the message's (epoch, offset), which name it
// uniquely on this node, holds the latest encodings.

type encodedMessage struct {
	m *hub.Message
	b []byte
}

const (
	encodeSlots = 1024
	// encodeCacheMax: larger messages are encoded per connection rather
	// than held in the table.
	encodeCacheMax = 8 << 10
)

var (
	encodeTable [encodeSlots]atomic.Pointer[encodedMessage]
	encodeSeed  = maphash.MakeSeed()
)

// encodeMessage returns m as a message object. The bytes are shared: never
// modify them.
func encodeMessage(m *hub.Message) []byte {
	slot := &encodeTable[(maphash.String(encodeSeed, m.Epoch)^m.Offset)%encodeSlots]
	if e := slot.Load(); e != nil && e.m == m {
		return e.b
	}
	b := appendMessage(make([]byte, 0, 128+len(m.Topic)+len(m.Type)+len(m.Data)), m)
	if len(b) <= encodeCacheMax {
		slot.Store(&encodedMessage{m: m, b: b})
	}
	return b
}

func appendMessage(b []byte, m *hub.Message) []byte {
	b = append(b, `{"type":"message","topic":`...)
	b = appendJSONString(b, m.Topic)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, m.Offset, 10)
	b = append(b, `,"epoch":`...)
	b = appendJSONString(b, m.Epoch)
	b = append(b, `,"event":`...)
	b = appendJSONString(b, m.Type)
	b = append(b, `,"data":`...)
	if len(m.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, m.Data...) // compact JSON, as the hub keeps it
	}
	b = append(b, `,"time":"`...)
	b = m.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, `\u00`...)
				b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// The replies, as JSON.

type livePosition struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

type subscribedReply struct {
	Type     string       `json:"type"`
	ID       string       `json:"id,omitempty"`
	Topic    string       `json:"topic"`
	Position livePosition `json:"position"`
	Gap      bool         `json:"gap"`
}

type gapReply struct {
	Type     string        `json:"type"`
	Topic    string        `json:"topic"`
	Since    *livePosition `json:"since,omitempty"`
	Position livePosition  `json:"position"`
}

type unsubscribedReply struct {
	Type   string   `json:"type"`
	ID     string   `json:"id,omitempty"`
	Topics []string `json:"topics"`
}

type idReply struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
}

type errorReply struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Topic   string `json:"topic,omitempty"`
}

type closeReply struct {
	Type   string `json:"type"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// appendReply appends v's JSON; v is one of the reply types above.
func appendReply(b []byte, v any) []byte {
	j, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("server: encode %T: %v", v, err)) // our own types
	}
	return append(b, j...)
}

// appendSubscribed appends the replies to a subscription: subscribed, a
// gap if there is one, then what the client missed.
func appendSubscribed(b []byte, sep byte, id, topic string, since *hub.Position, r hub.Replay) []byte {
	add := func(b []byte) []byte {
		if len(b) > 0 && sep != 0 {
			b = append(b, sep)
		}
		return b
	}
	pos := livePosition{Offset: r.Position.Offset, Epoch: r.Position.Epoch}
	b = appendReply(add(b), subscribedReply{Type: "subscribed", ID: id, Topic: topic, Position: pos, Gap: r.Gap})
	if r.Gap {
		g := gapReply{Type: "gap", Topic: topic, Position: pos}
		if since != nil {
			g.Since = &livePosition{Offset: since.Offset, Epoch: since.Epoch}
		}
		b = appendReply(add(b), g)
	}
	for _, m := range r.Missed {
		b = append(add(b), encodeMessage(m)...)
	}
	return b
}

// parseSince reads resume positions given as JSON:
// {"topic":{"offset":17,"epoch":"…"},…}.
func parseSince(raw []byte) (map[string]*hub.Position, error) {
	var in map[string]*livePosition
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, invalidf("since: want {\"topic\":{\"offset\":N,\"epoch\":\"…\"}}: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	out := make(map[string]*hub.Position, len(in))
	for t, p := range in {
		if p == nil {
			continue
		}
		out[t] = &hub.Position{Offset: p.Offset, Epoch: p.Epoch}
	}
	return out, nil
}

// checkTopics validates a subscription's topic list for a caller.
func checkTopics(lc *liveCaller, topics []string, max int) error {
	if len(topics) == 0 {
		return invalidf("topics: name at least one topic")
	}
	if len(topics) > max {
		return invalidf("too many topics: at most %d per connection", max)
	}
	seen := make(map[string]bool, len(topics))
	for _, t := range topics {
		if err := lc.checkRead(t); err != nil {
			return err
		}
		if seen[t] {
			return invalidf("topic %s is listed twice", t)
		}
		seen[t] = true
	}
	return nil
}

// HTTP routes.

type publishRequest struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

type publishResponse struct {
	Topic string `json:"topic"`
	Event string `json:"event"`
}

// publishTopic serves POST /v1/topics/{topic}/publish: operators publish to
// user topics; built-in topics are the engine's.
func (s *Server) publishTopic(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	stateOf(r.Context()).target = topic
	if err := switchyard.CheckTopicName(topic); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkUserTopic(topic); err != nil {
		s.fail(w, r, err)
		return
	}
	var req publishRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	if req.Event == "" {
		s.fail(w, r, invalidf("event is required: the message's type, such as \"message\""))
		return
	}
	if err := s.tc(r).Publish(r.Context(), topic, req.Event, req.Data); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, publishResponse{Topic: topic, Event: req.Event})
}

type tokenRequest struct {
	Topics     []string `json:"topics"`
	TTLSeconds *int64   `json:"ttl_seconds"`
	Subject    string   `json:"subject"`
}

type tokenResponse struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresIn int64     `json:"expires_in"`
	ExpiresAt time.Time `json:"expires_at"`
	TenantID  string    `json:"tenant_id"`
	Topics    []string  `json:"topics"`
	Subject   string    `json:"subject"`
}

// createSubscriptionToken serves POST /v1/tokens: any member (viewer or
// better) issues a short-lived token that reads the named topics of the
// tenant, for a browser.
func (s *Server) createSubscriptionToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := s.decode(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return
	}
	st := stateOf(r.Context())
	target := strings.Join(req.Topics, ",")
	if len(target) > 200 {
		target = target[:200] + "…"
	}
	st.target = target
	var ttl time.Duration
	if req.TTLSeconds != nil {
		if *req.TTLSeconds < 1 || *req.TTLSeconds > int64(switchyard.MaxSubscriptionTokenTTL/time.Second) {
			s.fail(w, r, invalidf("ttl_seconds must be between 1 and %d, got %d", int64(switchyard.MaxSubscriptionTokenTTL/time.Second), *req.TTLSeconds))
			return
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	c := callerOf(r)
	tok, err := s.tc(r).IssueSubscriptionToken(r.Context(), switchyard.SubscriptionTokenParams{
		Topics: req.Topics, TTL: ttl, Subject: req.Subject, IssuedBy: c.limitKey(),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st.detail = "subject " + tok.Subject
	if ttl == 0 {
		ttl = switchyard.DefaultSubscriptionTokenTTL
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		Token: tok.Token, TokenType: "subscription",
		ExpiresIn: int64(ttl / time.Second), ExpiresAt: tok.ExpiresAt,
		TenantID: tok.TenantID, Topics: tok.Topics, Subject: tok.Subject,
	})
}
