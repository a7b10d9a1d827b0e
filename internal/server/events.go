package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
)

// Media types of the CloudEvents HTTP binding.
const (
	mediaCloudEvent      = "application/cloudevents+json"
	mediaCloudEventBatch = "application/cloudevents-batch+json"
)

// sendEvents serves POST /v1/events in the three modes of the CloudEvents
// 1.0 HTTP binding: structured (application/cloudevents+json, and plain
// application/json without ce-* headers), batched
// (application/cloudevents-batch+json) and binary (ce-* headers, the body
// is the data).
func (s *Server) sendEvents(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			writeError(w, r, http.StatusUnsupportedMediaType, codeUnsupportedMediaType, fmt.Sprintf("malformed Content-Type %q", ct))
			return
		}
	}
	binary := r.Header.Get("Ce-Specversion") != ""
	switch {
	case mt == mediaCloudEventBatch:
		s.sendEventBatch(w, r)
		return
	case mt == mediaCloudEvent, !binary && (mt == "" || mt == "application/json"):
		body, err := readBody(w, r, eventBodyLimit(s.cfg.MaxBodyBytes))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		e, err := switchyard.ParseCloudEvent(body)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.sendOne(w, r, e)
	case binary:
		e, err := binaryEvent(w, r, ct, mt, eventBodyLimit(s.cfg.MaxBodyBytes))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.sendOne(w, r, e)
	default:
		writeError(w, r, http.StatusUnsupportedMediaType, codeUnsupportedMediaType,
			"send a CloudEvent: Content-Type application/cloudevents+json (or application/json), "+
				"application/cloudevents-batch+json, or binary mode with ce-specversion, ce-id, ce-source and ce-type headers")
	}
}

// eventBodyLimit bounds the body of one event: the server's body limit, at
// most MaxEventBytes.
func eventBodyLimit(max int64) int64 {
	return min(max, switchyard.MaxEventBytes)
}

// readBody reads a body of at most limit bytes; an empty one is refused.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalidf("request body is empty; want a CloudEvent in JSON")
	}
	return body, nil
}

func (s *Server) sendOne(w http.ResponseWriter, r *http.Request, e switchyard.CloudEvent) {
	res, err := s.tc(r).SendEvents(r.Context(), e)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ev := res[0].Event
	st := stateOf(r.Context())
	st.target, st.detail = ev.ID, "type "+ev.CloudEvent.Type
	status := http.StatusCreated
	if res[0].Existing {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/v1/events/"+ev.ID)
	writeJSON(w, status, ev)
}

// eventBatchItem is one event of a batch's answer.
type eventBatchItem struct {
	Event    *switchyard.Event `json:"event"`
	Existing bool              `json:"existing"`
}

func (s *Server) sendEventBatch(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBatchBodyBytes))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		s.fail(w, r, invalidf("a batch is a JSON array of CloudEvents: %s", describeJSONError(err, body)))
		return
	}
	if len(raws) == 0 || len(raws) > switchyard.MaxEventBatch {
		s.fail(w, r, invalidf("a batch holds 1 to %d events, got %d", switchyard.MaxEventBatch, len(raws)))
		return
	}
	evs := make([]switchyard.CloudEvent, len(raws))
	for i, raw := range raws {
		if evs[i], err = switchyard.ParseCloudEvent(raw); err != nil {
			s.fail(w, r, fmt.Errorf("events[%d]: %w", i, err))
			return
		}
	}
	res, err := s.tc(r).SendEvents(r.Context(), evs...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	items := make([]eventBatchItem, len(res))
	for i, x := range res {
		items[i] = eventBatchItem{Event: x.Event, Existing: x.Existing}
	}
	stateOf(r.Context()).detail = fmt.Sprintf("%d events, ids %s to %s", len(res), res[0].Event.ID, res[len(res)-1].Event.ID)
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

// binaryEvent reads an event in binary mode: attributes in ce-* headers,
// percent-decoded; Content-Type is datacontenttype; the body is the data.
func binaryEvent(w http.ResponseWriter, r *http.Request, ct, mt string, limit int64) (switchyard.CloudEvent, error) {
	e := switchyard.CloudEvent{DataContentType: ct}
	for name, vs := range r.Header {
		lower := strings.ToLower(name)
		attr, ok := strings.CutPrefix(lower, "ce-")
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return e, invalidf("header %s is given %d times", lower, len(vs))
		}
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			return e, invalidf("header %s: malformed percent-encoding", lower)
		}
		switch attr {
		case "specversion":
			e.SpecVersion = v
		case "id":
			e.ID = v
		case "source":
			e.Source = v
		case "type":
			e.Type = v
		case "subject":
			e.Subject = v
		case "dataschema":
			e.DataSchema = v
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return e, invalidf("header ce-time must be an RFC 3339 time, got %q", v)
			}
			e.Time = &t
		case "datacontenttype", "data", "data_base64":
			return e, invalidf("header %s: in binary mode the data's type is Content-Type and the data is the body", lower)
		default:
			if e.Extensions == nil {
				e.Extensions = map[string]any{}
			}
			e.Extensions[attr] = v
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return e, err
	}
	if len(body) > 0 {
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			var buf bytes.Buffer
			if err := json.Compact(&buf, body); err != nil {
				return e, invalidf("the body is the event's data, of type %s, but it is not valid JSON: %s", mt, describeJSONError(err, body))
			}
			e.Data = buf.Bytes()
		} else {
			e.DataBase64 = base64.StdEncoding.EncodeToString(body)
		}
	}
	return e, e.Validate()
}

var listEventParams = []string{"type", "source", "subject", "since", "until", "limit", "cursor"}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := onlyParams(q, listEventParams...); err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := switchyard.EventFilter{Type: q.Get("type"), Source: q.Get("source"), Subject: q.Get("subject"), Cursor: q.Get("cursor"), Limit: limit}
	if f.Since, f.Until, err = timeRange(q); err != nil {
		s.fail(w, r, err)
		return
	}
	evs, next, err := s.tc(r).ListEvents(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(evs, next))
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	ev, err := s.tc(r).GetEvent(r.Context(), r.PathValue("id"))
	if errors.Is(err, switchyard.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, codeNotFound, fmt.Sprintf("event %q not found", r.PathValue("id")))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}
