package switchyard

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/store"
)

// Built-in topics of received events: every recorded event goes to events
// and to events.{type} of its tenant, as a message whose type is the
// event's and whose data is the CloudEvent.
const TopicEvents = "events"

// EventTopic is the topic of one event type's events: events.{type}.
func EventTopic(typ string) string { return "events." + typ }

// Event is a recorded event: the CloudEvent as received, with what the
// rules did with it.
type Event struct {
	ID         string     `json:"id"` // Switchyard's, for GET /v1/events/{id}
	ReceivedAt time.Time  `json:"received_at"`
	CloudEvent CloudEvent `json:"event"`
	// Dispatch says, for each rule whose types matched, whether its filter
	// held or failed and what each of its actions did (the job it
	// enqueued, the topic it published to, or its error).
	Dispatch []RuleOutcome `json:"dispatch"`
}

type (
	// RuleOutcome is what one rule did with an event.
	RuleOutcome = store.RuleOutcome
	// ActionOutcome is what one action of a rule did.
	ActionOutcome = store.ActionOutcome
)

// SentEvent is the outcome of one event sent.
type SentEvent struct {
	Event *Event
	// Existing is true when the event (its source and id) was recorded
	// before: Event is that record, and nothing happened again.
	Existing bool
}

func eventFromStore(e *store.Event) (*Event, error) {
	out := &Event{ID: formatID(e.ID), ReceivedAt: e.ReceivedAt, Dispatch: []RuleOutcome{}}
	if err := out.CloudEvent.UnmarshalJSON(e.Body); err != nil {
		return nil, fmt.Errorf("event %d: stored body: %w", e.ID, err)
	}
	if len(e.Dispatch) > 0 {
		if err := json.Unmarshal(e.Dispatch, &out.Dispatch); err != nil {
			return nil, fmt.Errorf("event %d: stored dispatch: %w", e.ID, err)
		}
	}
	return out, nil
}

// SendEvents records events in this client's tenant and routes them: the
// rules whose types match each event run their filters and actions, and
// the event and every job its rules enqueue are committed in one
// transaction, all the events of the call together. It then publishes
// each new event to the topics its rules name and to the built-in topics
// events and events.{type}.
//
// An event whose source and id the tenant has recorded before is not
// recorded again: its result is the stored one, with Existing. A rule that
// fails to evaluate, or an action that cannot be carried out, is recorded
// on the event (Event.Dispatch); the event is recorded all the same. Every
// event is checked first: if one is invalid, nothing is recorded and the
// error names its index.
func (c *Client) SendEvents(ctx context.Context, evs ...CloudEvent) ([]SentEvent, error) {
	return c.sendEvents(ctx, eventOrigin{}, evs...)
}

// eventOrigin says where events given to sendEvents come from.
type eventOrigin struct {
	// system marks the engine's own events, which rules and endpoints see
	// only when they name them.
	system bool
	// checkedData: their data was made from JSON just checked (a webhook's
	// body), and is not scanned again.
	checkedData bool
}

// sendEvents is SendEvents for events of origin from.
func (c *Client) sendEvents(ctx context.Context, from eventOrigin, evs ...CloudEvent) ([]SentEvent, error) {
	if len(evs) == 0 {
		return nil, invalid("send events: no events given")
	}
	if len(evs) > MaxEventBatch {
		return nil, invalid("send events: %d events, at most %d at once", len(evs), MaxEventBatch)
	}
	rules, err := c.tenantRules(ctx)
	if err != nil {
		return nil, fmt.Errorf("switchyard: send events: %w", err)
	}
	endpoints, err := c.tenantEndpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("switchyard: send events: %w", err)
	}
	byID := make(map[string]*Endpoint, len(endpoints))
	for _, ep := range endpoints {
		byID[ep.ID] = ep
	}
	now := time.Now()
	recs := make([]store.EventRecord, len(evs))
	topics := make([][]string, len(evs))
	for i := range evs {
		e := &evs[i]
		if err := e.validate(!from.checkedData); err != nil {
			return nil, eventError(len(evs), i, err)
		}
		body, err := e.MarshalJSON()
		if err != nil {
			return nil, eventError(len(evs), i, invalid("%v", err))
		}
		if len(body) > MaxEventBytes {
			return nil, eventError(len(evs), i, invalid("event is %d bytes, over %d", len(body), MaxEventBytes))
		}
		at := now
		if e.Time != nil {
			at = *e.Time
		}
		recs[i].Event = store.Event{
			TenantID: c.cfg.TenantID, Source: e.Source, EventID: e.ID, Type: e.Type, Subject: e.Subject,
			Time: at, Body: body,
		}
		plan := eventPlan{c: c, event: e, rec: &recs[i], endpoints: byID, system: from.system}
		for _, r := range rules {
			if (!from.system && r.rule.Matches(e.Type)) || (from.system && r.rule.MatchesSystem(e.Type)) {
				plan.rule(r)
			}
		}
		plan.subscriptions(endpoints)
		topics[i] = plan.topics
	}

	release := c.events.Hold()
	res, err := c.store.RecordEvents(ctx, recs)
	if err != nil {
		release(nil)
		return nil, fmt.Errorf("switchyard: send events: %w", err)
	}
	out := make([]SentEvent, len(res))
	var (
		enqueued []store.InsertResult
		msgs     []hub.Outgoing
	)
	for i, r := range res {
		var ev *Event
		var err error
		if r.Existing {
			ev, err = eventFromStore(r.Event)
		} else {
			ev = recordedEvent(r.Event, evs[i], store.ResolveOutcomes(recs[i].Outcomes, r.Jobs)) // what was sent: no need to parse it back
		}
		if err != nil {
			release(enqueuedEvents(enqueued))
			return nil, fmt.Errorf("switchyard: send events: %w", err)
		}
		out[i] = SentEvent{Event: ev, Existing: r.Existing}
		if r.Existing {
			continue
		}
		enqueued = append(enqueued, r.Jobs...)
		if len(r.Event.Body) > c.cfg.Topics.MaxMessageBytes {
			continue // too large for a topic message: subscribers read it by id
		}
		data := json.RawMessage(r.Event.Body)
		for _, t := range append([]string{TopicEvents, EventTopic(r.Event.Type)}, topics[i]...) {
			if len(t) <= maxTopicBytes && len(r.Event.Type) <= maxTopicBytes {
				msgs = append(msgs, hub.Outgoing{Tenant: c.cfg.TenantID, Topic: t, Type: r.Event.Type, Data: data})
			}
		}
	}
	release(enqueuedEvents(enqueued))
	if len(msgs) > 0 && (c.events.sqliteFile == "" || localListeners(c.events.sqliteFile)) {
		// The events are recorded; their live messages are best effort,
		// like every topic message: a failure is logged, not returned.
		if err := c.hub.PublishBatch(ctx, msgs); err != nil {
			c.cfg.Logger.Warn("switchyard: publish received events", "err", err, "messages", len(msgs))
		}
	}
	return out, nil
}

// maxTopicBytes bounds topic names and message types (the hub's limit).
const maxTopicBytes = 256

// recordedEvent is eventFromStore for an event just recorded from ce, with
// what its rules did.
func recordedEvent(e *store.Event, ce CloudEvent, dispatch []RuleOutcome) *Event {
	if ce.Time != nil {
		t := ce.Time.UTC()
		ce.Time = &t
	}
	return &Event{ID: formatID(e.ID), ReceivedAt: e.ReceivedAt, CloudEvent: ce, Dispatch: dispatch}
}

func eventError(n, i int, err error) error {
	if n > 1 {
		return fmt.Errorf("switchyard: send events: event %d: %w", i, err)
	}
	return fmt.Errorf("switchyard: send events: %w", err)
}

// GetEvent returns a recorded event; ErrNotFound for an unknown id or
// another tenant's.
func (c *Client) GetEvent(ctx context.Context, id string) (*Event, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("switchyard: event %q: %w", id, ErrNotFound)
	}
	e, err := c.store.GetEvent(ctx, c.cfg.TenantID, n)
	if err != nil {
		return nil, fmt.Errorf("switchyard: get event %s: %w", id, err)
	}
	return eventFromStore(e)
}

// EventFilter filters ListEvents; empty fields match anything.
type EventFilter struct {
	Type    string
	Source  string
	Subject string
	Since   time.Time // events whose time is at or after
	Until   time.Time // events whose time is before
	Cursor  string    // from a previous page
	Limit   int       // default 100, at most 1000
}

// ListEvents returns a page of recorded events, newest first, and the
// cursor of the next page ("" after the last).
func (c *Client) ListEvents(ctx context.Context, f EventFilter) ([]*Event, string, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return nil, "", invalid("limit must be between 1 and 1000, got %d", f.Limit)
	}
	var before int64
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", invalid("malformed cursor %q", f.Cursor)
		}
		before = n
	}
	es, err := c.store.ListEvents(ctx, store.EventListParams{
		TenantID: c.cfg.TenantID, Type: f.Type, Source: f.Source, Subject: f.Subject,
		Since: f.Since, Until: f.Until, Before: before, Limit: f.Limit + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: list events: %w", err)
	}
	next := ""
	if len(es) > f.Limit {
		es = es[:f.Limit]
		next = formatID(es[len(es)-1].ID)
	}
	out := make([]*Event, len(es))
	for i, e := range es {
		if out[i], err = eventFromStore(e); err != nil {
			return nil, "", fmt.Errorf("switchyard: list events: %w", err)
		}
	}
	return out, next, nil
}
