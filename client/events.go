package client

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// CloudEvent is a CloudEvents 1.0 event (https://cloudevents.io) in its
// structured JSON form, as SendEvent sends it and the server shows it.
type CloudEvent struct {
	SpecVersion string // "1.0"; SendEvent fills it in when empty
	// ID and Source identify the event: a second event with both the same
	// is a repeat, which the server records once.
	ID     string
	Source string // a URI reference: "/shop", "https://github.com/acme/app"
	Type   string // "image.uploaded"
	// Optional attributes.
	Subject         string
	Time            *time.Time
	DataContentType string
	DataSchema      string
	// Data is the payload as JSON; DataBase64 the payload of an event
	// whose data is binary. At most one is set.
	Data       json.RawMessage
	DataBase64 string
	// Extensions are further attributes: names of lower-case letters and
	// digits, values strings, numbers or booleans.
	Extensions map[string]any
}

// MarshalJSON writes the structured form, extensions as top-level
// attributes.
func (e CloudEvent) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(e.Extensions)+10)
	maps.Copy(m, e.Extensions)
	m["specversion"], m["id"], m["source"], m["type"] = e.SpecVersion, e.ID, e.Source, e.Type
	for name, v := range map[string]string{"subject": e.Subject, "datacontenttype": e.DataContentType,
		"dataschema": e.DataSchema, "data_base64": e.DataBase64} {
		if v != "" {
			m[name] = v
		}
	}
	if e.Time != nil {
		m["time"] = e.Time.UTC().Format(time.RFC3339Nano)
	}
	if len(e.Data) > 0 {
		m["data"] = e.Data
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the structured form; attributes without a field are
// extensions.
func (e *CloudEvent) UnmarshalJSON(b []byte) error {
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(b, &attrs); err != nil {
		return err
	}
	*e = CloudEvent{}
	for name, v := range attrs {
		var dst *string
		switch name {
		case "specversion":
			dst = &e.SpecVersion
		case "id":
			dst = &e.ID
		case "source":
			dst = &e.Source
		case "type":
			dst = &e.Type
		case "subject":
			dst = &e.Subject
		case "datacontenttype":
			dst = &e.DataContentType
		case "dataschema":
			dst = &e.DataSchema
		case "data_base64":
			dst = &e.DataBase64
		case "time":
			var t time.Time
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("event attribute time: %w", err)
			}
			e.Time = &t
			continue
		case "data":
			e.Data = append(json.RawMessage(nil), v...)
			continue
		default:
			var x any
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			if e.Extensions == nil {
				e.Extensions = map[string]any{}
			}
			e.Extensions[name] = x
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("event attribute %s: %w", name, err)
		}
	}
	return nil
}

// Event is a recorded event: the CloudEvent as received, and what the
// tenant's rules did with it.
type Event struct {
	ID         string     `json:"id"` // the server's id, for GetEvent
	ReceivedAt time.Time  `json:"received_at"`
	Event      CloudEvent `json:"event"`
	// Dispatch has one outcome per enabled rule whose types matched.
	Dispatch []RuleOutcome `json:"dispatch"`

	// Raw is the event exactly as the server sent it, including fields
	// this version of the client does not know. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's event shape, keeping a copy in Raw.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	*e = Event{}
	if err := json.Unmarshal(b, (*plain)(e)); err != nil {
		return err
	}
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// RuleOutcome is what one rule did with an event.
type RuleOutcome struct {
	RuleID string `json:"rule_id"`
	Rule   string `json:"rule"` // its name
	// Matched: the filter held and the actions ran. False when the filter
	// was false or could not be evaluated (Error says why).
	Matched bool            `json:"matched"`
	Error   string          `json:"error,omitempty"`
	Actions []ActionOutcome `json:"actions,omitempty"`
}

// ActionOutcome is what one action of a matched rule did.
type ActionOutcome struct {
	Action   string `json:"action"`             // "enqueue" or "publish"
	JobID    string `json:"job_id,omitempty"`   // the job enqueued
	Existing bool   `json:"existing,omitempty"` // its unique key matched a live job
	Topic    string `json:"topic,omitempty"`    // the topic published to
	Error    string `json:"error,omitempty"`
}

// SendEvent records one event in the tenant and routes it through the
// tenant's rules. When the tenant recorded an event with the same source
// and id before, nothing happens again: that event is returned and
// existing is true.
func (c *Client) SendEvent(ctx context.Context, ev CloudEvent) (event *Event, existing bool, err error) {
	if ev.SpecVersion == "" {
		ev.SpecVersion = "1.0"
	}
	event = new(Event)
	status, err := c.do(ctx, http.MethodPost, "/v1/events", nil, ev, event)
	if err != nil {
		return nil, false, err
	}
	return event, status == http.StatusOK, nil
}

// ListEventsParams filters ListEvents; empty fields do not filter.
type ListEventsParams struct {
	Type    string
	Source  string
	Subject string
	Since   time.Time // events whose time is at or after
	Until   time.Time // events whose time is before
	Limit   int       // events per page, 1 to 1000; 0 for the server's default (100)
	Cursor  string    // a previous page's NextCursor; "" for the first page
}

// EventPage is one page of ListEvents.
type EventPage = Page[Event]

// ListEvents returns one page of the tenant's recorded events, newest
// first.
func (c *Client) ListEvents(ctx context.Context, p ListEventsParams) (*EventPage, error) {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("type", p.Type)
	set("source", p.Source)
	set("subject", p.Subject)
	if !p.Since.IsZero() {
		q.Set("since", p.Since.Format(time.RFC3339Nano))
	}
	if !p.Until.IsZero() {
		q.Set("until", p.Until.Format(time.RFC3339Nano))
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	set("cursor", p.Cursor)
	return listPage[Event](ctx, c, "/v1/events", q)
}

// GetEvent returns a recorded event by the server's id (Event.ID, not the
// CloudEvent's).
func (c *Client) GetEvent(ctx context.Context, id string) (*Event, error) {
	if id == "" {
		return nil, errEmpty("event id")
	}
	e := new(Event)
	if _, err := c.do(ctx, http.MethodGet, "/v1/events/"+url.PathEscape(id), nil, nil, e); err != nil {
		return nil, err
	}
	return e, nil
}
