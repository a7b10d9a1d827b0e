package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/auth"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// liveWait bounds every wait on a live connection. It only catches hangs.
const liveWait = 60 * time.Second

// livePos is a topic position as the live endpoints write it.
type livePos struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// liveObj is any object the live endpoints send.
type liveObj struct {
	Type     string          `json:"type"`
	ID       string          `json:"id"`
	Topic    string          `json:"topic"`
	Offset   uint64          `json:"offset"`
	Epoch    string          `json:"epoch"`
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
	Time     time.Time       `json:"time"`
	Position *livePos        `json:"position"`
	Since    *livePos        `json:"since"`
	Gap      bool            `json:"gap"`
	Code     any             `json:"code"` // a string in errors, a number in SSE close events
	Message  string          `json:"message"`
	Reason   string          `json:"reason"`
	Topics   []string        `json:"topics"`
}

func (o liveObj) String() string {
	b, _ := json.Marshal(o)
	return string(b)
}

func decodeLive(t testing.TB, line []byte) liveObj {
	t.Helper()
	var o liveObj
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("live object %s: %v", line, err)
	}
	return o
}

// wsClient is a WebSocket client of GET /v1/ws.
type wsClient struct {
	t     testing.TB
	c     *websocket.Conn
	ctx   context.Context
	queue []liveObj
}

// liveURL is the URL of path on srv with query parameters.
func liveURL(base, path string, params ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// dialWS opens a WebSocket with key as the bearer credential (none if
// empty) and params as query parameters.
func dialWS(t testing.TB, base, key string, params ...string) (*wsClient, *http.Response, error) {
	return dialWSWith(t, nil, base, key, params...)
}

func dialWSWith(t testing.TB, hc *http.Client, base, key string, params ...string) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), liveWait)
	t.Cleanup(cancel)
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	c, resp, err := websocket.Dial(ctx, strings.Replace(liveURL(base, "/v1/ws", params...), "http", "ws", 1),
		&websocket.DialOptions{HTTPHeader: h, HTTPClient: hc})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c, ctx: ctx}, resp, nil
}

func mustDialWS(t testing.TB, base, key string, params ...string) *wsClient {
	t.Helper()
	c, resp, err := dialWS(t, base, key, params...)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = fmt.Sprintf(" (%d %s)", resp.StatusCode, b)
		}
		t.Fatalf("dial /v1/ws: %v%s", err, body)
	}
	return c
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.c.Write(w.ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("send %s: %v", b, err)
	}
}

// read returns the next object, or the error that ended the connection.
func (w *wsClient) read() (liveObj, error) {
	for len(w.queue) == 0 {
		typ, b, err := w.c.Read(w.ctx)
		if err != nil {
			return liveObj{}, err
		}
		if typ != websocket.MessageText {
			w.t.Fatalf("a binary message came: %q", b)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			w.queue = append(w.queue, decodeLive(w.t, line))
		}
	}
	o := w.queue[0]
	w.queue = w.queue[1:]
	return o, nil
}

func (w *wsClient) next() liveObj {
	w.t.Helper()
	o, err := w.read()
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return o
}

// expect returns the next object, which must be of type typ.
func (w *wsClient) expect(typ string) liveObj {
	w.t.Helper()
	o := w.next()
	if o.Type != typ {
		w.t.Fatalf("got %s, want a %s", o, typ)
	}
	return o
}

// subscribe subscribes and returns the subscribed replies (and any gap
// objects and missed messages that follow, in order) up to the last
// topic's subscribed reply.
func (w *wsClient) subscribe(id string, topics []string, since map[string]livePos) []liveObj {
	w.t.Helper()
	req := map[string]any{"type": "subscribe", "id": id, "topics": topics}
	if since != nil {
		req["since"] = since
	}
	w.send(req)
	var got []liveObj
	for _, topic := range topics {
		o := w.next()
		if o.Type != "subscribed" || o.ID != id || o.Topic != topic || o.Position == nil {
			w.t.Fatalf("subscribe %v: got %s, want subscribed to %s", topics, o, topic)
		}
		got = append(got, o)
	}
	return got
}

// closeStatus reads until the connection ends and returns its close
// status and reason.
func (w *wsClient) closeStatus() (websocket.StatusCode, string) {
	w.t.Helper()
	for {
		_, err := w.read()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		return websocket.CloseStatus(err), err.Error()
	}
}

// sseClient reads GET /v1/stream.
type sseClient struct {
	t      testing.TB
	resp   *http.Response
	br     *bufio.Reader
	lastID string
}

// openSSE opens a stream; header holds name, value pairs.
func openSSE(t testing.TB, base, key string, params []string, header ...string) (*sseClient, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), liveWait)
	req, err := http.NewRequestWithContext(ctx, "GET", liveURL(base, "/v1/stream", params...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/stream: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	if resp.StatusCode != 200 {
		return nil, resp
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	return &sseClient{t: t, resp: resp, br: bufio.NewReader(resp.Body)}, resp
}

func mustOpenSSE(t testing.TB, base, key string, params []string, header ...string) *sseClient {
	t.Helper()
	s, resp := openSSE(t, base, key, params, header...)
	if s == nil {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /v1/stream: %d %s", resp.StatusCode, b)
	}
	return s
}

// event returns the next event's type and object, skipping comments and
// retry fields.
func (s *sseClient) event() (string, liveObj, error) {
	var typ, data, id string
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return "", liveObj{}, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data == "" {
				continue // a comment or retry block
			}
			if id != "" {
				s.lastID = id
			}
			o := decodeLive(s.t, []byte(data))
			if o.Type != typ {
				s.t.Fatalf("event %s carries a %s object", typ, o.Type)
			}
			return typ, o, nil
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry: "):
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		default:
			s.t.Fatalf("unexpected stream line %q", line)
		}
	}
}

func (s *sseClient) expect(typ string) liveObj {
	s.t.Helper()
	got, o, err := s.event()
	if err != nil {
		s.t.Fatalf("read stream: %v", err)
	}
	if got != typ {
		s.t.Fatalf("got event %s %s, want %s", got, o, typ)
	}
	return o
}

func (s *sseClient) close() { s.resp.Body.Close() }

// publish publishes over HTTP as key, expecting status.
func publish(t *testing.T, base, key, tenant, topic, event, data string, status int) response {
	t.Helper()
	c := &apiClient{t: t, url: base, key: key}
	var h []string
	if tenant != "" {
		h = []string{"Switchyard-Tenant", tenant}
	}
	body := fmt.Sprintf(`{"event":%q,"data":%s}`, event, data)
	r := c.do("POST", "/v1/topics/"+url.PathEscape(topic)+"/publish", body, h...)
	if r.status != status {
		t.Fatalf("publish to %s: status %d, want %d: %s", topic, r.status, status, r.body)
	}
	return r
}

// newKey creates an API key with role in tenant (default when empty).
func newKey(t *testing.T, srv *servertest.Server, tenant, role string) string {
	t.Helper()
	c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
	var h []string
	if tenant != "" {
		h = []string{"Switchyard-Tenant", tenant}
	}
	r := c.do("POST", "/v1/keys", `{"name":"`+role+`","role":"`+role+`"}`, h...)
	if r.status != 201 {
		t.Fatalf("create %s key: %d %s", role, r.status, r.body)
	}
	var k struct{ Secret string }
	r.decode(t, &k)
	return k.Secret
}

// wantMessage checks a message object.
func wantMessage(t testing.TB, o liveObj, topic, event, data string) {
	t.Helper()
	if o.Type != "message" || o.Topic != topic || o.Event != event || string(o.Data) != data || o.Offset == 0 || o.Epoch == "" || o.Time.IsZero() {
		t.Fatalf("got %s, want message %s %s %s", o, topic, event, data)
	}
}

// TestLiveRoundTrip publishes over HTTP and over a WebSocket and reads the
// messages over WebSocket and SSE.
func TestLiveRoundTrip(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		op := newKey(t, srv, "", "operator")
		ws := mustDialWS(t, srv.URL, op)
		sse := mustOpenSSE(t, srv.URL, srv.AdminKey, []string{"topics", "chat.room1,chat.room2"})
		sub := ws.subscribe("s1", []string{"chat.room1", "chat.room2"}, nil)
		if sub[0].Gap || sub[0].Position.Offset != 0 {
			t.Fatalf("a fresh subscription: %s", sub[0])
		}
		for _, topic := range []string{"chat.room1", "chat.room2"} {
			if o := sse.expect("subscribed"); o.Topic != topic || o.Gap {
				t.Fatalf("stream: %s", o)
			}
		}

		ws.send(map[string]any{"type": "ping", "id": "p1"})
		if o := ws.expect("pong"); o.ID != "p1" {
			t.Fatalf("pong %s", o)
		}

		publish(t, srv.URL, op, "", "chat.room1", "message", `{"text":"over HTTP"}`, 202)
		m1 := ws.expect("message")
		wantMessage(t, m1, "chat.room1", "message", `{"text":"over HTTP"}`)
		if m1.Offset != 1 {
			t.Fatalf("first offset %d", m1.Offset)
		}
		wantMessage(t, sse.expect("message"), "chat.room1", "message", `{"text":"over HTTP"}`)

		ws.send(map[string]any{"type": "publish", "id": "w1", "topic": "chat.room2", "event": "typing", "data": map[string]any{"who": "ana"}})
		// The ack and the message may come in either order.
		var ack, msg liveObj
		for range 2 {
			switch o := ws.next(); o.Type {
			case "ack":
				ack = o
			case "message":
				msg = o
			default:
				t.Fatalf("got %s", o)
			}
		}
		if ack.ID != "w1" {
			t.Fatalf("ack %s", ack)
		}
		wantMessage(t, msg, "chat.room2", "typing", `{"who":"ana"}`)
		if s := sse.expect("message"); s.Topic != "chat.room2" || s.Offset != msg.Offset || s.Epoch != msg.Epoch {
			t.Fatalf("stream got %s, the socket %s", s, msg)
		}

		ws.send(map[string]any{"type": "unsubscribe", "id": "u1", "topics": []string{"chat.room1"}})
		if o := ws.expect("unsubscribed"); o.ID != "u1" || !slices.Equal(o.Topics, []string{"chat.room1"}) {
			t.Fatalf("unsubscribed %s", o)
		}
		publish(t, srv.URL, op, "", "chat.room1", "message", `"not for the socket"`, 202)
		publish(t, srv.URL, op, "", "chat.room2", "message", `"for both"`, 202)
		wantMessage(t, ws.expect("message"), "chat.room2", "message", `"for both"`)
		wantMessage(t, sse.expect("message"), "chat.room1", "message", `"not for the socket"`)
		wantMessage(t, sse.expect("message"), "chat.room2", "message", `"for both"`)

		// Bad requests get error replies, and the connection stays.
		for _, bad := range []string{`{"type":"dance","id":"b1"}`, `not json`, `{"type":"subscribe","id":"b2","topics":[]}`,
			`{"type":"subscribe","id":"b3","topics":["no spaces"]}`, `{"type":"subscribe","id":"b4","topics":["chat.room2"]}`,
			`{"type":"subscribe","id":"b5","topics":["x"],"since":{"y":{"offset":1,"epoch":"e"}}}`,
			`{"type":"ping","id":"b6","colour":"red"}`, `{"type":"publish","id":"b7","topic":"chat.room1"}`} {
			if err := ws.c.Write(ws.ctx, websocket.MessageText, []byte(bad)); err != nil {
				t.Fatal(err)
			}
			if o := ws.expect("error"); o.Code != "invalid_argument" || o.Message == "" {
				t.Fatalf("%s: %s", bad, o)
			}
		}
		ws.send(map[string]any{"type": "ping", "id": "p2"})
		ws.expect("pong")
	})
}

// TestLiveResume disconnects and resumes over both transports: nothing is
// lost and nothing repeated.
func TestLiveResume(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		key := srv.AdminKey
		const topic = "orders.eu"
		pub := func(i int) { publish(t, srv.URL, key, "", topic, "order", fmt.Sprint(i), 202) }

		ws := mustDialWS(t, srv.URL, key)
		ws.subscribe("s", []string{topic}, nil)
		sse := mustOpenSSE(t, srv.URL, key, []string{"topics", topic})
		sse.expect("subscribed")
		for i := 1; i <= 3; i++ {
			pub(i)
		}
		var last liveObj
		for i := 1; i <= 3; i++ {
			last = ws.expect("message")
			wantMessage(t, last, topic, "order", fmt.Sprint(i))
			wantMessage(t, sse.expect("message"), topic, "order", fmt.Sprint(i))
		}
		ws.c.Close(websocket.StatusNormalClosure, "bye")
		sse.close()
		lastID := sse.lastID

		for i := 4; i <= 6; i++ {
			pub(i)
		}
		ws = mustDialWS(t, srv.URL, key)
		got := ws.subscribe("again", []string{topic}, map[string]livePos{topic: {Offset: last.Offset, Epoch: last.Epoch}})
		// Publish returns once the store has the message; this node's hub
		// may hear of the last ones just after the subscription, and then
		// they come live rather than replayed. Either way, they come.
		if got[0].Gap || got[0].Position.Offset < last.Offset || got[0].Position.Offset > last.Offset+3 {
			t.Fatalf("resumed: %s", got[0])
		}
		sse = mustOpenSSE(t, srv.URL, key, []string{"topics", topic}, "Last-Event-ID", lastID)
		if o := sse.expect("subscribed"); o.Gap {
			t.Fatalf("stream resumed with a gap: %s", o)
		}
		for i := 4; i <= 6; i++ {
			m := ws.expect("message")
			wantMessage(t, m, topic, "order", fmt.Sprint(i))
			if m.Offset != last.Offset+uint64(i-3) {
				t.Fatalf("offset %d after %d", m.Offset, last.Offset)
			}
			wantMessage(t, sse.expect("message"), topic, "order", fmt.Sprint(i))
		}
		pub(7)
		wantMessage(t, ws.expect("message"), topic, "order", "7")
		wantMessage(t, sse.expect("message"), topic, "order", "7")

		// The since parameter takes the same positions, for clients that
		// reconnect themselves.
		since, _ := json.Marshal(map[string]livePos{topic: {Offset: last.Offset + 1, Epoch: last.Epoch}})
		sse2 := mustOpenSSE(t, srv.URL, key, []string{"topics", topic, "since", string(since)})
		sse2.expect("subscribed")
		for i := 5; i <= 7; i++ {
			wantMessage(t, sse2.expect("message"), topic, "order", fmt.Sprint(i))
		}
	})
}

// TestLiveGap resumes from positions the history no longer covers, or
// that belong to another epoch: the server says so.
func TestLiveGap(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true,
			Config: switchyard.Config{Topics: switchyard.TopicsConfig{HistorySize: 2}}})
		key := srv.AdminKey
		const topic = "prices"
		ws := mustDialWS(t, srv.URL, key)
		ws.subscribe("s", []string{topic}, nil)
		publish(t, srv.URL, key, "", topic, "tick", "1", 202)
		first := ws.expect("message")
		for i := 2; i <= 5; i++ {
			publish(t, srv.URL, key, "", topic, "tick", fmt.Sprint(i), 202)
			ws.expect("message")
		}

		for name, since := range map[string]livePos{
			"history gone":  {Offset: first.Offset, Epoch: first.Epoch},
			"another epoch": {Offset: 2, Epoch: "somewhere-else"},
		} {
			ws := mustDialWS(t, srv.URL, key)
			sub := ws.subscribe("g", []string{topic}, map[string]livePos{topic: since})
			if !sub[0].Gap || sub[0].Position.Offset != first.Offset+4 {
				t.Fatalf("%s: subscribed %s, want a gap", name, sub[0])
			}
			g := ws.expect("gap")
			if g.Topic != topic || g.Since == nil || *g.Since != since || g.Position == nil || *g.Position != *sub[0].Position {
				t.Fatalf("%s: gap %s", name, g)
			}
			tok, _ := json.Marshal(map[string]livePos{topic: since})
			sse := mustOpenSSE(t, srv.URL, key, []string{"topics", topic, "since", string(tok)})
			if o := sse.expect("subscribed"); !o.Gap {
				t.Fatalf("%s: stream subscribed %s", name, o)
			}
			sse.expect("gap")
			sse.close()
		}
		// Live messages go on after a gap.
		publish(t, srv.URL, key, "", topic, "tick", "6", 202)
		wantMessage(t, ws.expect("message"), topic, "tick", "6")
	})
}

// metricValue sums the samples of a metric whose labels include labels.
func metricValue(t testing.TB, srv *servertest.Server, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.Metric {
			for k, v := range labels {
				found := false
				for _, lp := range m.Label {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// smallWindowClient dials with a small socket receive buffer, so that a
// client that stops reading stops the server's writes soon.
func smallWindowClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestLiveSlowConsumer stalls one client (it stops reading) while another
// reads everything: the stalled one is evicted as a slow consumer and told
// so when it reads again; the other misses nothing.
func TestLiveSlowConsumer(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		// A buffer roomy enough for the fast client to keep up through any
		// burst, small enough for the stalled one to fill it well within
		// the server's write timeout once its socket is full (else the
		// write times out first, and the connection ends without an
		// eviction); large messages, so that the stalled socket fills soon.
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true,
			Config: switchyard.Config{Topics: switchyard.TopicsConfig{SubscriberBuffer: 256}}})
		key := srv.AdminKey
		const topic = "firehose"
		pad := strings.Repeat("x", 2000)
		fast := mustDialWS(t, srv.URL, key)
		fast.subscribe("f", []string{topic}, nil)
		slow, _, err := dialWSWith(t, smallWindowClient(), srv.URL, key)
		if err != nil {
			t.Fatal(err)
		}
		slow.subscribe("s", []string{topic}, nil)

		// The fast client reads until the last message, "end", and tells
		// the publisher of each message it read: the publisher waits for
		// it, so the fast client is never more than one message behind,
		// however busy the machine, while the stalled one falls further
		// behind with every message.
		type got struct {
			n   int
			err error
		}
		fastDone := make(chan got, 1)
		progress := make(chan int, 1)
		go func() {
			n := 0
			for {
				o, err := fast.read()
				switch {
				case err != nil:
				case o.Type != "message":
					err = fmt.Errorf("got %s", o)
				case o.Event == "end":
					fastDone <- got{n, nil}
					return
				case o.Offset != uint64(n+1) || string(o.Data) != fmt.Sprintf(`{"n":%d,"pad":%q}`, n+1, pad):
					err = fmt.Errorf("got %s after %d messages", o, n)
				}
				if err != nil {
					fastDone <- got{n, err}
					return
				}
				n++
				progress <- n
			}
		}()

		// Publish until the hub drops the stalled client: its socket fills,
		// then its buffer in the hub.
		n := 0
		for metricValue(t, srv, "switchyard_hub_evictions_total", map[string]string{"reason": "slow_consumer"}) == 0 {
			if n == 20000 {
				t.Fatal("20000 messages published, and the stalled client is still subscribed")
			}
			n++
			if err := srv.Client.Publish(t.Context(), topic, "tick", json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))); err != nil {
				t.Fatal(err)
			}
			select {
			case read := <-progress:
				if read != n {
					t.Fatalf("the fast client read message %d after %d was published", read, n)
				}
			case r := <-fastDone:
				t.Fatalf("the fast client stopped after %d messages: %v", r.n, r.err)
			case <-time.After(30 * time.Second):
				t.Fatalf("the fast client did not read message %d", n)
			}
		}
		if err := srv.Client.Publish(t.Context(), topic, "end", nil); err != nil {
			t.Fatal(err)
		}
		r := testdb.Receive(t, fastDone, "the fast client's messages")
		if r.err != nil || r.n != n {
			t.Fatalf("the fast client read %d of %d messages: %v", r.n, n, r.err)
		}
		code, reason := slow.closeStatus()
		if code != 4000 || !strings.HasPrefix(reason, "slow consumer: buffer of 256 messages full") {
			t.Fatalf("the stalled client was closed with %d %q, want 4000 and the slow consumer reason", code, reason)
		}
		t.Logf("evicted after %d messages", n)
	})
}

// subscriptionToken issues a token as key.
func subscriptionToken(t *testing.T, base, key, body string) string {
	t.Helper()
	r := (&apiClient{t: t, url: base, key: key}).do("POST", "/v1/tokens", body)
	if r.status != 200 {
		t.Fatalf("POST /v1/tokens %s: %d %s", body, r.status, r.body)
	}
	var tok struct {
		Token     string `json:"token"`
		TokenType string `json:"token_type"`
		ExpiresIn int    `json:"expires_in"`
	}
	r.decode(t, &tok)
	if tok.Token == "" || tok.TokenType != "subscription" || tok.ExpiresIn < 1 {
		t.Fatalf("token answer %s", r.body)
	}
	return tok.Token
}

// TestLiveTokenScope holds subscription tokens to their topics and keeps
// them off the rest of the API.
func TestLiveTokenScope(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		viewer := newKey(t, srv, "", "viewer")
		tok := subscriptionToken(t, srv.URL, viewer, `{"topics":["workflow.1","chat.*"],"ttl_seconds":600,"subject":"user-7"}`)

		ws := mustDialWS(t, srv.URL, "", "token", tok)
		ws.subscribe("ok", []string{"workflow.1", "chat.lobby"}, nil)
		for _, topic := range []string{"workflow.2", "jobs", "chat", "job.1"} {
			ws.send(map[string]any{"type": "subscribe", "id": "no", "topics": []string{topic}})
			if o := ws.expect("error"); o.Code != "permission_denied" || o.ID != "no" {
				t.Fatalf("subscribe %s with the token: %s", topic, o)
			}
		}
		ws.send(map[string]any{"type": "publish", "id": "pub", "topic": "chat.lobby", "event": "message", "data": 1})
		if o := ws.expect("error"); o.Code != "permission_denied" {
			t.Fatalf("publish with the token: %s", o)
		}
		for i, topic := range []string{"workflow.2", "workflow.1"} {
			if err := srv.Client.Publish(t.Context(), topic, "step", i+1); err != nil {
				t.Fatal(err)
			}
		}
		wantMessage(t, ws.expect("message"), "workflow.1", "step", "2")

		// As a bearer header too.
		ws2 := mustDialWS(t, srv.URL, tok)
		ws2.subscribe("hdr", []string{"workflow.1"}, nil)
		mustOpenSSE(t, srv.URL, "", []string{"token", tok, "topics", "workflow.1,chat.x"}).expect("subscribed")
		if _, resp := openSSE(t, srv.URL, "", []string{"token", tok, "topics", "workflow.1,workflow.2"}); resp.StatusCode != 403 {
			t.Fatalf("stream of a topic the token does not grant: %d", resp.StatusCode)
		}
		if _, resp := openSSE(t, srv.URL, "", []string{"token", tok, "topics", "workflow.1", "tenant", "other"}); resp.StatusCode != 404 {
			t.Fatalf("stream in another tenant: %d", resp.StatusCode)
		}

		// Nowhere else in the API.
		c := &apiClient{t: t, url: srv.URL, key: tok}
		for _, path := range []string{"/v1/jobs", "/v1/me", "/v1/queues"} {
			if r := c.do("GET", path, ""); r.status != 401 {
				t.Fatalf("GET %s with a subscription token: %d %s", path, r.status, r.body)
			}
		}
		c.want(401, "POST", "/v1/tokens", `{"topics":["workflow.1"]}`)
		c.want(401, "POST", "/v1/topics/chat.lobby/publish", `{"event":"x"}`)

		// Expired, forged, or bent out of shape: refused.
		key := signingKey(t, srv)
		expired, _, err := auth.SignSubscription(key, auth.SubscriptionClaims{TenantID: "default", Topics: []string{"workflow.1"}}, time.Now().Add(-time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		forged, _, _ := auth.SignSubscription([]byte("not the server's key, but 32 b.."), auth.SubscriptionClaims{TenantID: "default", Topics: []string{"jobs"}}, time.Now(), time.Minute)
		for name, bad := range map[string]string{"expired": expired, "forged": forged, "truncated": tok[:len(tok)-4]} {
			if _, resp, err := dialWS(t, srv.URL, "", "token", bad); err == nil || resp == nil || resp.StatusCode != 401 {
				t.Fatalf("%s token: %v %v", name, resp, err)
			}
		}

		// Issuing: bad requests.
		vc := &apiClient{t: t, url: srv.URL, key: viewer}
		for _, bad := range []string{`{"topics":[]}`, `{"topics":["a b"]}`, `{"topics":["x"],"ttl_seconds":86401}`,
			`{"topics":["x"],"ttl_seconds":0}`, `{"topics":["*"]}`, `{"topics":["x","x"]}`, `{"topics":["x"],"scope":"all"}`} {
			vc.want(400, "POST", "/v1/tokens", bad)
		}
	})
}

// TestLivePublishRules: viewers read but do not publish; nobody publishes
// to built-in topics.
func TestLivePublishRules(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		viewer := newKey(t, srv, "", "viewer")
		op := newKey(t, srv, "", "operator")
		publish(t, srv.URL, viewer, "", "chat.x", "message", "1", 403)
		vws := mustDialWS(t, srv.URL, viewer)
		vws.send(map[string]any{"type": "publish", "id": "v", "topic": "chat.x", "event": "message"})
		if o := vws.expect("error"); o.Code != "permission_denied" || o.ID != "v" || o.Topic != "chat.x" {
			t.Fatalf("viewer publish: %s", o)
		}
		ows := mustDialWS(t, srv.URL, op)
		for _, topic := range []string{"jobs", "job.1", "queue.default", "workflow.7", "events", "events.order.created", "workers"} {
			for _, k := range []string{op, srv.AdminKey} {
				r := publish(t, srv.URL, k, "", topic, "x", "1", 403)
				if code, msg := r.errorCode(t); code != "permission_denied" || !strings.Contains(msg, "built-in") {
					t.Fatalf("publish to %s: %s %s", topic, code, msg)
				}
			}
			ows.send(map[string]any{"type": "publish", "id": "o", "topic": topic, "event": "x"})
			if o := ows.expect("error"); o.Code != "permission_denied" {
				t.Fatalf("publish to %s over the socket: %s", topic, o)
			}
		}
		// Near misses are user topics.
		for _, topic := range []string{"jobs2", "jobsx.1", "worker", "queues.x", "eventsx"} {
			publish(t, srv.URL, op, "", topic, "x", "1", 202)
		}
		c := &apiClient{t: t, url: srv.URL, key: op}
		c.want(400, "POST", "/v1/topics/chat.x/publish", `{"data":1}`)
		c.want(400, "POST", "/v1/topics/chat.x/publish", `{"event":"x","data":1,"extra":true}`)
		c.want(400, "POST", "/v1/topics/chat%20x/publish", `{"event":"x"}`)
		c.want(400, "POST", "/v1/topics/chat.x/publish", `{"event":"x","data":"`+strings.Repeat("y", 70000)+`"}`)
	})
}

// TestLiveTenants: a tenant's topics are its own.
func TestLiveTenants(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true})
		admin := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
		for _, id := range []string{"acme", "globex"} {
			admin.want(201, "POST", "/v1/tenants", `{"id":"`+id+`"}`)
		}
		acme := newKey(t, srv, "acme", "operator")
		globex := newKey(t, srv, "globex", "operator")
		ws := mustDialWS(t, srv.URL, acme)
		ws.subscribe("a", []string{"chat"}, nil)
		sse := mustOpenSSE(t, srv.URL, acme, []string{"topics", "chat"})
		sse.expect("subscribed")
		publish(t, srv.URL, globex, "", "chat", "message", `"globex's"`, 202)
		publish(t, srv.URL, srv.AdminKey, "globex", "chat", "message", `"globex's too"`, 202)
		publish(t, srv.URL, acme, "", "chat", "message", `"acme's"`, 202)
		wantMessage(t, ws.expect("message"), "chat", "message", `"acme's"`)
		wantMessage(t, sse.expect("message"), "chat", "message", `"acme's"`)

		// Naming another tenant answers 404, as for one that does not exist.
		for _, tenant := range []string{"globex", "nope"} {
			if _, resp, err := dialWS(t, srv.URL, acme, "tenant", tenant); err == nil || resp.StatusCode != 404 {
				t.Fatalf("acme's key in %s: %v", tenant, err)
			}
			if _, resp := openSSE(t, srv.URL, acme, []string{"topics", "chat"}, "Switchyard-Tenant", tenant); resp.StatusCode != 404 {
				t.Fatalf("acme's key streaming %s: %d", tenant, resp.StatusCode)
			}
		}
		// A token is its issuer's tenant's.
		tok := subscriptionToken(t, srv.URL, acme, `{"topics":["chat"]}`)
		tws := mustDialWS(t, srv.URL, "", "token", tok)
		tws.subscribe("t", []string{"chat"}, nil)
		publish(t, srv.URL, globex, "", "chat", "message", `"globex's"`, 202)
		publish(t, srv.URL, acme, "", "chat", "message", `"acme's again"`, 202)
		wantMessage(t, tws.expect("message"), "chat", "message", `"acme's again"`)
		// The instance administrator picks the tenant with ?tenant=.
		aws := mustDialWS(t, srv.URL, "", "token", srv.AdminKey, "tenant", "globex")
		aws.subscribe("g", []string{"chat"}, nil)
		publish(t, srv.URL, globex, "", "chat", "message", `"globex's again"`, 202)
		wantMessage(t, aws.expect("message"), "chat", "message", `"globex's again"`)
	})
}

// TestLiveLimits: connections per IP and per credential, subscriptions per
// connection, message size.
func TestLiveLimits(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		srv := servertest.Start(t, db, servertest.Options{NotStarted: true, Server: server.Config{
			Realtime: server.RealtimeConfig{MaxConnectionsPerIP: 3, MaxConnectionsPerCredential: 2, MaxSubscriptions: 3, MaxMessageBytes: 1024},
		}})
		a, b, c := newKey(t, srv, "", "viewer"), newKey(t, srv, "", "viewer"), newKey(t, srv, "", "viewer")
		wsA := mustDialWS(t, srv.URL, a)
		mustOpenSSE(t, srv.URL, a, []string{"topics", "x"}).expect("subscribed")
		tooMany := func(what string, resp *http.Response, err error) {
			t.Helper()
			if err == nil || resp == nil || resp.StatusCode != 429 {
				t.Fatalf("%s: %v %v", what, resp, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), `"code":"rate_limited"`) || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: %s %v", what, b, resp.Header)
			}
		}
		_, resp, err := dialWS(t, srv.URL, a)
		tooMany("a third connection with one key", resp, err)
		mustDialWS(t, srv.URL, b)
		_, resp, err = dialWS(t, srv.URL, c)
		tooMany("a fourth connection from one IP", resp, err)
		if _, resp := openSSE(t, srv.URL, c, []string{"topics", "x"}); resp.StatusCode != 429 {
			t.Fatalf("a fourth stream from one IP: %d", resp.StatusCode)
		}
		if v := metricValue(t, srv, "switchyard_realtime_refused_total", nil); v != 3 {
			t.Errorf("refused connections counted %v, want 3", v)
		}

		// Subscriptions per connection.
		wsA.subscribe("s", []string{"t1", "t2"}, nil)
		wsA.send(map[string]any{"type": "subscribe", "id": "over", "topics": []string{"t3", "t4"}})
		if o := wsA.expect("error"); o.Code != "invalid_argument" || !strings.Contains(o.Message, "at most 3") {
			t.Fatalf("over the subscription limit: %s", o)
		}
		wsA.subscribe("last", []string{"t3"}, nil)
		if _, resp := openSSE(t, srv.URL, b, []string{"topics", "a,b,c,d"}); resp.StatusCode != 400 {
			t.Fatalf("a stream of 4 topics: %d", resp.StatusCode)
		}

		// Message size: the connection is closed with 1009.
		wsA.send(map[string]any{"type": "ping", "id": strings.Repeat("x", 2000)})
		if code, _ := wsA.closeStatus(); code != websocket.StatusMessageTooBig {
			t.Fatalf("a message over the limit: close %d", code)
		}
		// Its slot is given back.
		testdb.Poll(t, liveWait, "the closed connection's slot", func() bool {
			c, _, err := dialWS(t, srv.URL, a)
			if err == nil {
				c.c.CloseNow()
			}
			return err == nil
		})
	})
}

// TestLiveIdleTimeout: a client that answers no ping is closed with 4002.
func TestLiveIdleTimeout(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true, Server: server.Config{
		Realtime: server.RealtimeConfig{KeepAlive: 20 * time.Millisecond, IdleTimeout: 100 * time.Millisecond},
	}})
	// The client reads nothing (so answers no ping) until the server has
	// closed it.
	idle := mustDialWS(t, srv.URL, srv.AdminKey)
	testdb.Poll(t, liveWait, "the idle connection closed", func() bool {
		return metricValue(t, srv, "switchyard_realtime_connections", nil) == 0
	})
	if code, reason := idle.closeStatus(); code != 4002 || !strings.HasPrefix(reason, "idle timeout") {
		t.Fatalf("idle client closed with %d %q", code, reason)
	}
}

// TestLiveShutdown: CloseRealtime closes sockets with 1001 and streams with
// a close event; the hub stopping does too.
func TestLiveShutdown(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true})
	s, err := server.New(server.Config{Client: srv.Client})
	if err != nil {
		t.Fatal(err)
	}
	hs := newLoopbackServer(t, s.Handler())
	ws := mustDialWS(t, hs, srv.AdminKey)
	ws.subscribe("s", []string{"x"}, nil)
	sse := mustOpenSSE(t, hs, srv.AdminKey, []string{"topics", "x"})
	sse.expect("subscribed")
	closed := make(chan struct{})
	go func() {
		s.CloseRealtime()
		close(closed)
	}()
	if code, reason := ws.closeStatus(); code != websocket.StatusGoingAway || reason != "server shutting down" {
		t.Fatalf("socket closed with %d %q", code, reason)
	}
	if o := sse.expect("close"); fmt.Sprint(o.Code) != "1001" {
		t.Fatalf("stream closed with %s", o)
	}
	testdb.Receive(t, closed, "CloseRealtime")
	if _, resp, err := dialWS(t, hs, srv.AdminKey); err == nil || resp.StatusCode != 503 {
		t.Fatalf("after CloseRealtime: %v", err)
	}
}

// newLoopbackServer serves h on loopback until t ends.
func newLoopbackServer(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// TestLiveCrossNode: two servers on one PostgreSQL database; messages
// published through either reach the subscribers of both, every topic in
// one order.
func TestLiveCrossNode(t *testing.T) {
	t.Parallel()
	db := testdb.PostgresURL(t)
	a := servertest.Start(t, db, servertest.Options{NotStarted: true})
	b := servertest.Start(t, db, servertest.Options{NotStarted: true})
	key := a.AdminKey
	topics := []string{"room.1", "room.2"}
	wsA := mustDialWS(t, a.URL, key)
	wsA.subscribe("a", topics, nil)
	sseB := mustOpenSSE(t, b.URL, key, []string{"topics", strings.Join(topics, ",")})
	sseB.expect("subscribed")
	sseB.expect("subscribed")

	// Both nodes publish at once, to both topics.
	const each = 20
	var wg sync.WaitGroup
	for i, node := range []*servertest.Server{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				topic := topics[j%2]
				if err := node.Client.Publish(context.Background(), topic, "m", fmt.Sprintf(`"%d-%d"`, i, j)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	seqA, seqB := map[string][]string{}, map[string][]string{}
	for range 2 * each {
		m := wsA.expect("message")
		if m.Offset != uint64(len(seqA[m.Topic])+1) {
			t.Fatalf("node a: %s after %d messages", m, len(seqA[m.Topic]))
		}
		seqA[m.Topic] = append(seqA[m.Topic], string(m.Data))
		o := sseB.expect("message")
		if o.Offset != uint64(len(seqB[o.Topic])+1) {
			t.Fatalf("node b: %s after %d messages", o, len(seqB[o.Topic]))
		}
		seqB[o.Topic] = append(seqB[o.Topic], string(o.Data))
	}
	for _, topic := range topics {
		if len(seqA[topic]) != each || !slices.Equal(seqA[topic], seqB[topic]) {
			t.Fatalf("%s: node a saw %v, node b %v", topic, seqA[topic], seqB[topic])
		}
	}
	// A position from one node is another epoch on the other: a gap.
	ws := mustDialWS(t, b.URL, key)
	sub := ws.subscribe("x", []string{"room.1"}, map[string]livePos{"room.1": {Offset: each / 2, Epoch: "from-node-a"}})
	if !sub[0].Gap {
		t.Fatalf("resuming on the other node: %s", sub[0])
	}
}

// TestLiveUpgradeRequired: a plain GET of /v1/ws answers a clean 400 in
// the error shape.
func TestLiveUpgradeRequired(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "sqlite:"+testdb.SQLitePath(t), servertest.Options{NotStarted: true})
	c := &apiClient{t: t, url: srv.URL, key: srv.AdminKey}
	r := c.want(400, "GET", "/v1/ws", "")
	if code, _ := r.errorCode(t); code != "invalid_argument" || r.header.Get("Upgrade") != "websocket" {
		t.Fatalf("plain GET: %s %v", r.body, r.header)
	}
	r = c.do("GET", "/v1/ws", "", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "8", "Sec-WebSocket-Key", "x")
	if r.status != 400 {
		t.Fatalf("bad version: %d %s", r.status, r.body)
	}
	r.errorCode(t)
	(&apiClient{t: t, url: srv.URL}).want(401, "GET", "/v1/ws", "")
	c.want(400, "GET", "/v1/ws?colour=red", "")
	c.want(400, "GET", "/v1/stream", "")
	c.want(400, "GET", "/v1/stream?topics=a&colour=red", "")
	c.want(400, "GET", "/v1/stream?topics=a&since=nonsense", "")
	// Cross-origin sockets need the origin allowed.
	h := http.Header{"Origin": {"https://evil.example"}, "Authorization": {"Bearer " + srv.AdminKey}}
	ctx, cancel := context.WithTimeout(t.Context(), liveWait)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1)+"/v1/ws", &websocket.DialOptions{HTTPHeader: h}); err == nil || resp.StatusCode != 403 {
		t.Fatalf("a foreign origin: %v", err)
	}
}

// status makes a request and returns its status and headers, and the body
// only if it is an error: a stream that answers 200 is closed unread.
func (c *apiClient) status(method, path string, header ...string) response {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.url+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode >= 300 {
		if r.body, err = io.ReadAll(resp.Body); err != nil {
			c.t.Fatal(err)
		}
	}
	return r
}

// TestLiveHubStopped: when the client (and its hub) closes, sockets are
// closed with 1001 and streams end with a close event.
func TestLiveHubStopped(t *testing.T) {
	t.Parallel()
	c, err := switchyard.Open(t.Context(), switchyard.Config{Database: "sqlite:" + testdb.SQLitePath(t)})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := c.CreateAPIKey(t.Context(), switchyard.NewAPIKey{Name: "k", Role: switchyard.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	base := newLoopbackServer(t, s.Handler())
	ws := mustDialWS(t, base, key)
	ws.subscribe("s", []string{"x"}, nil)
	sse := mustOpenSSE(t, base, key, []string{"topics", "x"})
	sse.expect("subscribed")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if code, reason := ws.closeStatus(); code != websocket.StatusGoingAway || reason != "server shutting down" {
		t.Fatalf("socket closed with %d %q", code, reason)
	}
	if o := sse.expect("close"); fmt.Sprint(o.Code) != "1001" {
		t.Fatalf("stream closed with %s", o)
	}
	sse.close()
	s.CloseRealtime() // waits for the handlers
}
