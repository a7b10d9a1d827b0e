package server

// GET /v1/stream?topics=a,b: the hub's topics as Server-Sent Events, for
// clients without WebSocket. The events carry the same objects as the
// WebSocket: "event:" is the object's type, "data:" the object, and "id:"
// a resume token holding every topic's position, so that the Last-Event-ID
// an EventSource sends when it reconnects resumes every topic.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/hub"
)

// sseRetryMillis is the reconnection delay the stream suggests to
// EventSource.
const sseRetryMillis = 2000

// serveStream serves GET /v1/stream.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	lc, ok := s.authenticateLive(w, r)
	if !ok {
		return
	}
	rt := s.realtime
	q := r.URL.Query()
	if err := onlyParams(q, "token", "tenant", "topics", "since"); err != nil {
		s.fail(w, r, err)
		return
	}
	var topics []string
	for _, t := range strings.Split(q.Get("topics"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			topics = append(topics, t)
		}
	}
	if err := checkTopics(lc, topics, rt.cfg.MaxSubscriptions); err != nil {
		s.fail(w, r, err)
		return
	}
	// An EventSource reconnecting sends its first URL again, with the
	// newest id as Last-Event-ID: that one wins.
	since, err := parseStreamSince(r.Header.Get("Last-Event-ID"), q.Get("since"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	release, ok := s.acquireLive(w, r, lc, "sse")
	if !ok {
		return
	}
	defer release()
	sub := lc.client.NewSubscriber()
	defer sub.Close()

	rc := http.NewResponseController(w)
	// The server's read timeout was for the request; the stream lives on.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)

	st := &sseStream{w: w, rc: rc, topics: topics, pos: make(map[string]*topicPos, len(topics))}
	p := getBuf()
	defer func() { putBuf(p, *p) }()
	b := append((*p)[:0], "retry: "...)
	b = append(b, itoa(sseRetryMillis)...)
	b = append(b, "\n\n"...)
	for _, t := range topics {
		rp, err := sub.Subscribe(t, since[t])
		if err != nil {
			break // closed (the hub stops): the loop below says so
		}
		// The position is what the client has: where it resumed from, then
		// each missed message as it goes out.
		tp := &topicPos{epoch: rp.Position.Epoch, last: rp.Position.Offset}
		if !rp.Gap && since[t] != nil {
			tp.last = since[t].Offset
		}
		st.pos[t] = tp
		pos := livePosition{Offset: rp.Position.Offset, Epoch: rp.Position.Epoch}
		b = st.appendEvent(b, "subscribed", appendReply(nil, subscribedReply{Type: "subscribed", Topic: t, Position: pos, Gap: rp.Gap}))
		if rp.Gap {
			g := gapReply{Type: "gap", Topic: t, Position: pos}
			if since[t] != nil {
				g.Since = &livePosition{Offset: since[t].Offset, Epoch: since[t].Epoch}
			}
			b = st.appendEvent(b, "gap", appendReply(nil, g))
		}
		for _, m := range rp.Missed {
			b = st.appendLive(b, m)
			if len(b) >= liveBatchBytes {
				if st.write(b) != nil {
					*p = b
					return
				}
				b = b[:0]
			}
		}
	}
	if st.write(b) != nil {
		*p = b
		return
	}
	*p = b[:0]

	var lastWrite time.Time
	var coalesce *time.Timer
	defer func() {
		if coalesce != nil {
			coalesce.Stop()
		}
	}()
	var tick <-chan time.Time
	if ka := rt.cfg.KeepAlive; ka > 0 {
		t := time.NewTicker(ka)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case m := <-sub.C():
			// Coalesce as the WebSocket does (wsConn.deliver), in the
			// shortest window: streams are the fallback, and few.
			if wait := minWindow(rt.cfg.Coalesce) - time.Since(lastWrite); rt.cfg.Coalesce > 0 && wait > 0 {
				if coalesce == nil {
					coalesce = time.NewTimer(wait)
				} else {
					coalesce.Reset(wait)
				}
				select {
				case <-coalesce.C:
				case <-sub.Done():
					continue // the next round says why
				case <-rt.quit:
					continue
				case <-r.Context().Done():
					return
				}
			}
			b := st.appendLive((*p)[:0], m)
		more:
			for len(b) < liveBatchBytes {
				select {
				case m := <-sub.C():
					b = st.appendLive(b, m)
				default:
					break more
				}
			}
			*p = b
			if len(b) > 0 {
				if st.write(b) != nil {
					return
				}
				lastWrite = time.Now()
				if len(b) >= liveBatchBytes {
					lastWrite = time.Time{}
				}
			}
		case <-tick:
			if st.write(append((*p)[:0], ": keep-alive\n\n"...)) != nil {
				return
			}
		case <-sub.Done():
			code, reason := closeReason(sub.Err())
			st.close(code, reason)
			return
		case <-rt.quit:
			st.close(closeGoingAway, "server shutting down")
			return
		case <-r.Context().Done():
			return
		}
	}
}

// sseStream is one event stream.
type sseStream struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	topics []string
	pos    map[string]*topicPos
}

// appendLive appends m as a message event if the stream has not had it.
func (st *sseStream) appendLive(b []byte, m *hub.Message) []byte {
	pos := st.pos[m.Topic]
	if pos == nil || !pos.wants(m) {
		return b
	}
	return st.appendEvent(b, "message", encodeMessage(m))
}

// appendEvent appends one event with the current resume token as its id.
func (st *sseStream) appendEvent(b []byte, typ string, data []byte) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\nid: "...)
	b = appendResumeToken(b, st.topics, st.pos)
	b = append(b, "\ndata: "...)
	b = append(b, data...) // one line: compact JSON
	return append(b, "\n\n"...)
}

func (st *sseStream) write(b []byte) error {
	_ = st.rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout))
	if _, err := st.w.Write(b); err != nil {
		return err
	}
	return st.rc.Flush()
}

// close ends the stream with a close event saying why.
func (st *sseStream) close(code int, reason string) {
	b := append([]byte("event: close\ndata: "), appendReply(nil, closeReply{Type: "close", Code: code, Reason: reason})...)
	_ = st.write(append(b, "\n\n"...))
}

// Resume tokens: base64url (unpadded) of {"topic":[offset,"epoch"],…}.
// Clients treat them as opaque.

func appendResumeToken(b []byte, topics []string, pos map[string]*topicPos) []byte {
	p := getBuf()
	j := append((*p)[:0], '{')
	n := 0
	for _, t := range topics {
		tp := pos[t]
		if tp == nil {
			continue
		}
		if n > 0 {
			j = append(j, ',')
		}
		n++
		j = appendJSONString(j, t)
		j = append(j, ":["...)
		j = strconv.AppendUint(j, tp.last, 10)
		j = append(j, ',')
		j = appendJSONString(j, tp.epoch)
		j = append(j, ']')
	}
	j = append(j, '}')
	b = base64.RawURLEncoding.AppendEncode(b, j)
	putBuf(p, j)
	return b
}

func decodeResumeToken(s string) (map[string]*hub.Position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not a resume token")
	}
	var in map[string][2]json.RawMessage
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, errors.New("not a resume token")
	}
	out := make(map[string]*hub.Position, len(in))
	for t, v := range in {
		var p hub.Position
		if json.Unmarshal(v[0], &p.Offset) != nil || json.Unmarshal(v[1], &p.Epoch) != nil {
			return nil, errors.New("not a resume token")
		}
		out[t] = &p
	}
	return out, nil
}

// parseStreamSince reads where a stream resumes: the Last-Event-ID
// header, else the since parameter, which takes a resume token or the
// WebSocket's JSON form {"topic":{"offset":N,"epoch":"…"}}.
func parseStreamSince(lastEventID, since string) (map[string]*hub.Position, error) {
	switch {
	case lastEventID != "":
		p, err := decodeResumeToken(lastEventID)
		if err != nil {
			return nil, invalidf("Last-Event-ID: %v", err)
		}
		return p, nil
	case since == "":
		return map[string]*hub.Position{}, nil
	case strings.HasPrefix(strings.TrimSpace(since), "{"):
		return parseSince([]byte(since))
	}
	p, err := decodeResumeToken(since)
	if err != nil {
		return nil, invalidf("since: want a resume token (an event's id) or {\"topic\":{\"offset\":N,\"epoch\":\"…\"}}")
	}
	return p, nil
}
