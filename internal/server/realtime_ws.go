package server

// GET /v1/ws: the hub's topics over WebSocket (github.com/coder/websocket).
//
// A connection costs two goroutines and no more: the writer, which selects
// over the subscriber's channel, the requests the reader hands it, the
// keep-alive ticker and the shutdown signal; and the reader, which waits
// for the client's next frame by peeking at the socket, then reads it
// with the library (which closes a connection whose read context ends, so
// reading cannot share the writer's select). Both wait with little of
// their stacks in use, so the garbage collector keeps each stack at 4 KB.
// The HTTP handler returns once the connection is upgraded, so neither the
// request nor the HTTP server's goroutine and buffers are kept for the
// connection's life. Keep-alive pings run in a goroutine of their own
// while one waits for its pong.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/switchyard-dev/switchyard/internal/hub"
)

// Buffer sizes of an upgraded connection. Clients send small requests;
// what the server sends is mostly small messages, and larger writes
// bypass the buffer.
const (
	wsReadBuffer  = 1 << 10
	wsWriteBuffer = 2 << 10
	// wsMaxID bounds a request's id, which replies repeat.
	wsMaxID = 128
	// wsSocketBuffer fixes the kernel's send buffer of a connection (the
	// kernel doubles it), instead of letting it grow to several megabytes
	// for a client that does not read: so a stalled client costs the node
	// little kernel memory, and fills its buffer in the hub, and is
	// dropped as a slow consumer, soon.
	wsSocketBuffer = 128 << 10
)

// serveWebSocket serves GET /v1/ws.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	lc, ok := s.authenticateLive(w, r)
	if !ok {
		return
	}
	if err := onlyParams(r.URL.Query(), "token", "tenant"); err != nil {
		s.fail(w, r, err)
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		writeError(w, r, http.StatusBadRequest, codeInvalidArgument,
			"GET /v1/ws speaks WebSocket: send Connection: Upgrade and Upgrade: websocket (GET /v1/stream serves the same topics as Server-Sent Events)")
		return
	}
	if msg := checkHandshake(r); msg != "" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		writeError(w, r, http.StatusBadRequest, codeInvalidArgument, msg)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !sameHost(origin, r.Host) && !s.originAllowed(origin) {
		writeError(w, r, http.StatusForbidden, codePermissionDenied, "origin "+origin+" is not allowed (see --cors-origins)")
		return
	}
	release, ok := s.acquireLive(w, r, lc, "websocket")
	if !ok {
		return
	}
	rt := s.realtime
	sub := lc.client.NewSubscriber()
	rw := &wsResponseWriter{ResponseWriter: w}
	c, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // the origin was checked above, against --cors-origins
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered.
		sub.Close()
		release()
		return
	}
	c.SetReadLimit(rt.cfg.MaxMessageBytes)
	wc := &wsConn{
		s: s, rt: rt, lc: lc, c: c, sub: sub, release: release,
		topics:   map[string]*topicPos{},
		in:       make(chan *wsClientMessage),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
		opened:   time.Now(),
		dc:       rw.dc,
		br:       rw.br,
	}
	go wc.run()
}

// wsConn is one WebSocket connection.
type wsConn struct {
	s       *Server
	rt      *realtime
	lc      *liveCaller
	c       *websocket.Conn
	sub     *hub.Subscriber
	release func()
	opened  time.Time

	topics map[string]*topicPos // the writer's

	in       chan *wsClientMessage // subscribe and unsubscribe, reader to writer
	done     chan struct{}         // closed when the writer ends
	readDone chan struct{}         // closed when the reader ends
	readErr  error                 // why, written before readDone closes

	lastSeen atomic.Int64 // unix nanos of the last frame or pong from the client
	// Coalescing (see deliver), the writer's: when messages were last
	// written, whether the connection is hot, what waits to go out, and
	// the timer that ends the window (made on first use).
	lastWrite time.Time
	win       time.Duration
	hot       bool
	pending   *[]byte
	coalesce  *time.Timer
	pinging   atomic.Bool
	pings     sync.WaitGroup

	// dc and br are the connection and the read buffer under c, for the
	// reader's wait (see readLoop); brMu keeps the reader off br while the
	// writer's close handshake reads it.
	dc   *deadlineConn
	br   *bufio.Reader
	brMu sync.Mutex
}

// wsClientMessage is a request from the client.
type wsClientMessage struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Topics []string        `json:"topics"`
	Since  json.RawMessage `json:"since"`
	Topic  string          `json:"topic"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
}

// run is the writer: it owns the subscriptions and writes every message
// and subscription reply, so that a topic's replay and live messages go
// out in order.
//
// Its frame, and loop's, are kept small: a goroutine parked with little
// of its stack in use has its stack halved by the garbage collector, and
// the stacks are most of what an idle connection costs.
func (wc *wsConn) run() {
	wc.lastSeen.Store(time.Now().UnixNano())
	go wc.readLoop()
	wc.end(wc.loop())
}

// end closes the connection, with a close frame unless code is 0, and
// waits for its other goroutines.
//
//go:noinline
func (wc *wsConn) end(code int, reason string) {
	defer wc.release()
	close(wc.done)
	wc.sub.Close()
	if code == 0 {
		_ = wc.c.CloseNow() // the client is gone, or broke the protocol and was told
	} else {
		if len(reason) > closeReasonMaxSize {
			reason = reason[:closeReasonMaxSize]
		}
		// The close handshake reads from the connection's buffer; the
		// reader stays off it meanwhile.
		wc.brMu.Lock()
		_ = wc.c.Close(websocket.StatusCode(code), reason)
		wc.brMu.Unlock()
	}
	<-wc.readDone
	wc.pings.Wait()
	wc.s.log.Debug("live connection closed", "transport", "websocket", "tenant", wc.lc.tenant,
		"code", code, "reason", reason, "read_err", errString(wc.readErr), "duration_ms", time.Since(wc.opened).Milliseconds())
}

// loop runs until the connection must end, returning the close code and
// reason to send, or 0 when no close frame should be sent.
func (wc *wsConn) loop() (code int, reason string) {
	var tick <-chan time.Time
	if ka := wc.rt.cfg.KeepAlive; ka > 0 {
		t := time.NewTicker(ka)
		defer t.Stop()
		tick = t.C
	}
	defer wc.cool()
	for {
		// While hot (see deliver), messages wait in the hub until the
		// coalescing timer fires.
		msgs, wake := wc.sub.C(), (<-chan time.Time)(nil)
		if wc.hot {
			msgs, wake = nil, wc.coalesce.C
		}
		select {
		case m := <-msgs:
			if wc.deliver(m) != nil {
				return 0, ""
			}
		case <-wake:
			if wc.flush() != nil {
				return 0, ""
			}
		case req := <-wc.in:
			var err error
			if req.Type == "subscribe" {
				err = wc.subscribe(req)
			} else {
				err = wc.unsubscribe(req)
			}
			if err != nil {
				return 0, ""
			}
		case <-wc.readDone:
			return 0, ""
		case <-wc.sub.Done():
			return closeReason(wc.sub.Err())
		case <-tick:
			idle := time.Since(time.Unix(0, wc.lastSeen.Load()))
			if it := wc.rt.cfg.IdleTimeout; it > 0 && idle >= it {
				return closeIdleTimeout, fmt.Sprintf("idle timeout: nothing received for %s", it)
			}
			wc.ping()
		case <-wc.rt.quit:
			return closeGoingAway, "server shutting down"
		}
	}
}

// ping pings the client unless a ping is waiting for its pong already; the
// pong counts as hearing from the client.
func (wc *wsConn) ping() {
	if !wc.pinging.CompareAndSwap(false, true) {
		return
	}
	wait := wc.rt.cfg.IdleTimeout
	if wait <= 0 {
		wait = 2 * wc.rt.cfg.KeepAlive
	}
	wc.pings.Add(1)
	go func() {
		defer wc.pings.Done()
		defer wc.pinging.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if wc.c.Ping(ctx) == nil {
			wc.lastSeen.Store(time.Now().UnixNano())
		}
	}()
}

// bufPool holds write buffers, taken for one write at a time, so that an
// idle connection holds none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(p *[]byte, b []byte) {
	if cap(b) <= 4*liveBatchBytes {
		*p = b[:0]
		bufPool.Put(p)
	}
}

// deliver writes m and whatever else is waiting, up to about
// liveBatchBytes, as one WebSocket message of newline-separated objects.
//
// Coalescing: a connection that wrote less than its coalescing window
// (see window) ago keeps what it has and turns hot: it stops taking messages, which
// wait in its buffer in the hub, until the window is over (flush), then
// writes everything at once. A write that carried several messages shows
// a busy topic, and also turns the connection hot for a window. So under
// load each connection wakes and writes once per window, and a thousand
// subscribers of a busy topic cost a thousand wake-ups and system calls
// per window rather than per message; a quiet connection writes at once.
//
//go:noinline
func (wc *wsConn) deliver(m *hub.Message) error {
	p := getBuf()
	b := wc.appendLive((*p)[:0], m)
	b = wc.drain(b)
	if w := wc.window(); w > 0 && len(b) > 0 && len(b) < liveBatchBytes {
		if wait := w - time.Since(wc.lastWrite); wait > 0 {
			*p = b
			wc.pending = p
			wc.heat(wait)
			return nil
		}
	}
	return wc.write(p, b)
}

// flush writes what waited while the connection was hot.
//
//go:noinline
func (wc *wsConn) flush() error {
	wc.hot = false
	// Adapt the window: messages piling up in the hub mean the node is
	// too busy to keep up writing this often; few mean it can write
	// sooner.
	q, c := len(wc.sub.C()), cap(wc.sub.C())
	switch {
	case q*4 > c:
		wc.win = min(2*wc.win, wc.rt.cfg.Coalesce)
	case q*16 < c:
		wc.win = max(wc.win/2, minWindow(wc.rt.cfg.Coalesce))
	}
	p := wc.pending
	wc.pending = nil
	if p == nil {
		p = getBuf()
		*p = (*p)[:0]
	}
	return wc.write(p, wc.drain(*p))
}

// write writes b, if anything, and gives p back.
func (wc *wsConn) write(p *[]byte, b []byte) error {
	var err error
	if len(b) > 0 {
		err = wc.c.Write(context.Background(), websocket.MessageText, b)
		wc.lastWrite = time.Now()
		if w := wc.window(); w > 0 && bytes.IndexByte(b, '\n') >= 0 {
			wc.heat(w) // several messages came together: expect more
		}
	}
	putBuf(p, b)
	return err
}

// window is the connection's coalescing window: it starts at an eighth
// of Coalesce and adapts (see flush) between that and Coalesce.
func (wc *wsConn) window() time.Duration {
	if wc.win == 0 && wc.rt.cfg.Coalesce > 0 {
		wc.win = minWindow(wc.rt.cfg.Coalesce)
	}
	return wc.win
}

func minWindow(longest time.Duration) time.Duration {
	return min(longest, max(longest/8, 500*time.Microsecond))
}

// heat turns the connection hot until d from now.
func (wc *wsConn) heat(d time.Duration) {
	if wc.coalesce == nil {
		wc.coalesce = time.NewTimer(d)
	} else {
		wc.coalesce.Reset(d)
	}
	wc.hot = true
}

// cool stops coalescing, dropping what waited: the connection is ending.
func (wc *wsConn) cool() {
	if wc.coalesce != nil {
		wc.coalesce.Stop()
	}
	wc.hot = false
	if wc.pending != nil {
		putBuf(wc.pending, (*wc.pending)[:0])
		wc.pending = nil
	}
}

// drain appends what is waiting, up to about liveBatchBytes.
func (wc *wsConn) drain(b []byte) []byte {
	for len(b) < liveBatchBytes {
		select {
		case m := <-wc.sub.C():
			b = wc.appendLive(b, m)
		default:
			return b
		}
	}
	return b
}

// appendLive appends m if the client still reads its topic and has not
// had it.
func (wc *wsConn) appendLive(b []byte, m *hub.Message) []byte {
	pos := wc.topics[m.Topic]
	if pos == nil || !pos.wants(m) {
		return b
	}
	if len(b) > 0 {
		b = append(b, '\n')
	}
	return append(b, encodeMessage(m)...)
}

// subscribe handles a subscribe request: all of its topics, or none.
func (wc *wsConn) subscribe(req *wsClientMessage) error {
	max := wc.rt.cfg.MaxSubscriptions
	var since map[string]*hub.Position
	if len(req.Since) > 0 && string(req.Since) != "null" {
		var err error
		if since, err = parseSince(req.Since); err != nil {
			return wc.replyError(req.ID, "", err)
		}
	}
	if err := checkTopics(wc.lc, req.Topics, max); err != nil {
		return wc.replyError(req.ID, "", err)
	}
	for t := range since {
		if !slices.Contains(req.Topics, t) {
			return wc.replyError(req.ID, t, invalidf("since names topic %s, which is not among the topics", t))
		}
	}
	for _, t := range req.Topics {
		if wc.topics[t] != nil {
			return wc.replyError(req.ID, t, invalidf("already subscribed to %s", t))
		}
	}
	if n := len(wc.topics) + len(req.Topics); n > max {
		return wc.replyError(req.ID, "", invalidf("too many subscriptions: at most %d per connection (this would make %d)", max, n))
	}
	p := getBuf()
	defer func() { putBuf(p, *p) }()
	b := (*p)[:0]
	for _, t := range req.Topics {
		r, err := wc.sub.Subscribe(t, since[t])
		if err != nil {
			if wc.sub.Err() != nil {
				break // closed: the loop closes the connection next
			}
			code, msg := wc.s.liveError(err)
			b = appendSep(b)
			b = appendReply(b, errorReply{Type: "error", ID: req.ID, Code: code, Message: msg, Topic: t})
			continue
		}
		wc.topics[t] = &topicPos{epoch: r.Position.Epoch, last: r.Position.Offset}
		b = appendSubscribed(b, '\n', req.ID, t, since[t], r)
		if len(b) >= liveBatchBytes {
			if err := wc.c.Write(context.Background(), websocket.MessageText, b); err != nil {
				*p = b
				return err
			}
			b = b[:0]
		}
	}
	*p = b
	if len(b) == 0 {
		return nil
	}
	return wc.c.Write(context.Background(), websocket.MessageText, b)
}

func appendSep(b []byte) []byte {
	if len(b) > 0 {
		b = append(b, '\n')
	}
	return b
}

// unsubscribe handles an unsubscribe request; topics not subscribed to are
// ignored.
func (wc *wsConn) unsubscribe(req *wsClientMessage) error {
	if len(req.Topics) == 0 {
		return wc.replyError(req.ID, "", invalidf("topics: name at least one topic"))
	}
	for _, t := range req.Topics {
		if wc.topics[t] != nil {
			wc.sub.Unsubscribe(t)
			delete(wc.topics, t)
		}
	}
	return wc.reply(unsubscribedReply{Type: "unsubscribed", ID: req.ID, Topics: req.Topics})
}

// readLoop reads the client's requests until the connection ends. It
// answers pings and publishes itself, and hands subscriptions to the
// writer.
func (wc *wsConn) readLoop() {
	defer close(wc.readDone)
	for {
		// Wait for the client's next frame here, where little of the
		// stack is in use, rather than deep in the WebSocket library's
		// read, so that an idle connection's reader keeps a small stack.
		// Nothing is consumed; a frame already buffered is read at once.
		wc.brMu.Lock()
		buffered := wc.br.Buffered()
		wc.brMu.Unlock()
		if buffered == 0 {
			wc.dc.waitReadable()
		}
		typ, data, err := wc.c.Read(context.Background())
		if err != nil {
			wc.readErr = err
			return
		}
		wc.lastSeen.Store(time.Now().UnixNano())
		if typ != websocket.MessageText {
			if wc.replyError("", "", invalidf("binary messages are not understood: send JSON text messages")) != nil {
				return
			}
			continue
		}
		req := new(wsClientMessage)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(req); err != nil {
			if wc.replyError("", "", invalidf("malformed message: %s", describeJSONError(err, data))) != nil {
				return
			}
			continue
		}
		if len(req.ID) > wsMaxID {
			if wc.replyError("", "", invalidf("id is longer than %d bytes", wsMaxID)) != nil {
				return
			}
			continue
		}
		switch req.Type {
		case "ping":
			err = wc.reply(idReply{Type: "pong", ID: req.ID})
		case "publish":
			err = wc.publish(req)
		case "subscribe", "unsubscribe":
			select {
			case wc.in <- req:
			case <-wc.done:
				return
			}
		default:
			err = wc.replyError(req.ID, "", invalidf("unknown message type %q: want subscribe, unsubscribe, publish or ping", req.Type))
		}
		if err != nil {
			return
		}
	}
}

// publish handles a publish request, on the reader: a slow store slows
// the client's requests, never its messages.
func (wc *wsConn) publish(req *wsClientMessage) error {
	if err := wc.lc.checkPublish(req.Topic); err != nil {
		return wc.replyError(req.ID, req.Topic, err)
	}
	if req.Event == "" {
		return wc.replyError(req.ID, req.Topic, invalidf("event is required: the message's type, such as \"message\""))
	}
	ctx, cancel := context.WithTimeout(context.Background(), livePublishTimeout)
	defer cancel()
	if err := wc.s.publishLimit(ctx, wc.lc); err != nil {
		return wc.replyError(req.ID, req.Topic, err)
	}
	if err := wc.lc.client.Publish(ctx, req.Topic, req.Event, req.Data); err != nil {
		return wc.replyError(req.ID, req.Topic, err)
	}
	return wc.reply(idReply{Type: "ack", ID: req.ID})
}

func (wc *wsConn) reply(v any) error {
	p := getBuf()
	b := appendReply((*p)[:0], v)
	err := wc.c.Write(context.Background(), websocket.MessageText, b)
	putBuf(p, b)
	return err
}

func (wc *wsConn) replyError(id, topic string, err error) error {
	code, msg := wc.s.liveError(err)
	return wc.reply(errorReply{Type: "error", ID: id, Code: code, Message: msg, Topic: topic})
}

// wsResponseWriter hands coder/websocket a connection that suits a long
// life: the HTTP server's request deadlines cleared, a deadline on every
// write instead (a client that takes nothing for liveWriteTimeout is cut
// off), and small buffers.
type wsResponseWriter struct {
	http.ResponseWriter
	dc *deadlineConn // set by Hijack
	br *bufio.Reader // set by Hijack
}

func (w *wsResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *wsResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(wsSocketBuffer)
	}
	dc := &deadlineConn{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		dc.raw, _ = sc.SyscallConn()
	}
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent after its handshake, read ahead by the
		// HTTP server.
		b, _ := brw.Reader.Peek(n)
		dc.pending = bytes.Clone(b)
	}
	w.dc, w.br = dc, bufio.NewReaderSize(dc, wsReadBuffer)
	return dc, bufio.NewReadWriter(w.br, bufio.NewWriterSize(dc, wsWriteBuffer)), nil
}

// deadlineConn sets a write deadline before every write, and first serves
// what the HTTP server had read ahead.
type deadlineConn struct {
	net.Conn
	raw      syscall.RawConn // nil if the connection has none
	deadline time.Time       // the write deadline set
	pendMu   sync.Mutex      // guards pending: waitReadable reads it on the reader, Read on the close handshake
	pending  []byte
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	c.pendMu.Lock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		c.pendMu.Unlock()
		return n, nil
	}
	c.pendMu.Unlock()
	return c.Conn.Read(p)
}

// waitReadable returns once the connection has something to read (or has
// failed), consuming nothing.
func (c *deadlineConn) waitReadable() {
	c.pendMu.Lock()
	pending := len(c.pending) > 0
	c.pendMu.Unlock()
	if c.raw == nil || pending {
		return
	}
	_ = c.raw.Read(peekReadable)
}

// Write writes p with a deadline between half of liveWriteTimeout and all
// of it from now: moving the deadline costs, so it moves only once it is
// less than half the timeout away. Writes are serialised by the WebSocket
// library, so deadline needs no lock.
func (c *deadlineConn) Write(p []byte) (int, error) {
	if now := time.Now(); c.deadline.Sub(now) < liveWriteTimeout/2 {
		c.deadline = now.Add(liveWriteTimeout)
		_ = c.Conn.SetWriteDeadline(c.deadline)
	}
	return c.Conn.Write(p)
}

// checkHandshake validates the rest of a WebSocket handshake, so that a
// bad one answers in the error shape.
func checkHandshake(r *http.Request) string {
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return "unsupported WebSocket version " + quoteOrNone(r.Header.Get("Sec-WebSocket-Version")) + ": want Sec-WebSocket-Version: 13"
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return "want exactly one Sec-WebSocket-Key header"
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return "Sec-WebSocket-Key must be 16 bytes in base64"
	}
	return ""
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

// headerHasToken reports whether the comma-separated header name holds
// token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// sameHost reports whether a browser's origin is the host it connects to.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
