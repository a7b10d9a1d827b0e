package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// NotifyDefinitions: a definition (a rule, a source, an endpoint) of
// tenant TenantID changed; caches of them must be dropped.
const NotifyDefinitions = "definitions"

// Definition kinds.
const (
	KindRule     = "rule"
	KindSource   = "source"
	KindEndpoint = "endpoint"
)

// Event is a CloudEvent as stored: the attributes queries filter on, in
// columns, and the whole event, in its structured JSON form, in Body.
type Event struct {
	ID       int64 // the store's, unique within the store
	TenantID string
	// Source and EventID are the CloudEvent's source and id: unique
	// together within a tenant, so that a repeat is recognised.
	Source  string
	EventID string
	Type    string
	Subject string    // "" for none
	Time    time.Time // the event's time, or when it was received if it has none
	// ReceivedAt is set by the store, from the database clock.
	ReceivedAt time.Time
	// Body is the CloudEvent in structured JSON form, as the API shows it.
	Body []byte
	// Dispatch is what the rules did with it: a JSON array of RuleOutcome,
	// with the ids of the jobs they created.
	Dispatch []byte
}

// EventRecord is one event to record, with what its rules decided.
type EventRecord struct {
	Event Event // ID, ReceivedAt and Dispatch are set by the store
	// Jobs are the jobs the rules create: inserted with the event, in the
	// same transaction, or not at all.
	Jobs []InsertParams
	// Outcomes say, rule by rule, what the rules decided; an enqueue
	// action's outcome names its job by its index in Jobs.
	Outcomes []RuleOutcome
}

// RuleOutcome is what one rule whose types matched an event did with it.
type RuleOutcome struct {
	RuleID   string `json:"rule_id"`
	RuleName string `json:"rule"`
	// Matched is false when the rule's filter was false for the event, or
	// could not be evaluated (Error says why); its actions did not run.
	Matched bool            `json:"matched"`
	Error   string          `json:"error,omitempty"`
	Actions []ActionOutcome `json:"actions,omitempty"`
}

// ActionOutcome is what one action of a matched rule did.
type ActionOutcome struct {
	Action string `json:"action"`
	// Job is the enqueue action's job, as an index into EventRecord.Jobs
	// (-1 for none); the store records its id as JobID.
	Job      int    `json:"-"`
	JobID    string `json:"job_id,omitempty"`
	Existing bool   `json:"existing,omitempty"` // its unique key matched a live job, which JobID is
	Topic    string `json:"topic,omitempty"`
	Endpoint string `json:"endpoint_id,omitempty"`
	Error    string `json:"error,omitempty"`
}

// EncodeDispatch returns the Dispatch of an event whose jobs were inserted
// as results.
func EncodeDispatch(outcomes []RuleOutcome, results []InsertResult) ([]byte, error) {
	if len(outcomes) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal(ResolveOutcomes(outcomes, results))
}

// ResolveOutcomes returns outcomes with the ids of the jobs they made,
// which were inserted as results.
func ResolveOutcomes(outcomes []RuleOutcome, results []InsertResult) []RuleOutcome {
	out := make([]RuleOutcome, len(outcomes))
	for i, o := range outcomes {
		out[i] = o
		out[i].Actions = make([]ActionOutcome, len(o.Actions))
		for k, a := range o.Actions {
			if a.Job >= 0 && a.Job < len(results) && results[a.Job].Job != nil {
				a.JobID = strconv.FormatInt(results[a.Job].Job.ID, 10)
				a.Existing = results[a.Job].Existing
			}
			out[i].Actions[k] = a
		}
	}
	return out
}

// RecordedEvent is the outcome of one EventRecord, in input order.
type RecordedEvent struct {
	Event *Event
	// Existing is true when the tenant had an event with this source and
	// id already, which Event then is: nothing was written, no job made.
	Existing bool
	// Jobs are the results of EventRecord.Jobs; nil when Existing.
	Jobs []InsertResult
}

// EventListParams filters an event listing, newest first.
type EventListParams struct {
	TenantID string
	Type     string    // "" for any
	Source   string    // "" for any
	Subject  string    // "" for any
	Since    time.Time // zero for any: only events whose Time is at or after
	Until    time.Time // zero for any: only events whose Time is before
	Before   int64     // 0 for the first page; else only ids < Before
	Limit    int       // 0 for no limit
}

// DeliveryAttempt is one outbound delivery attempt of an event to an endpoint.
type DeliveryAttempt struct {
	ID         int64 // set by the store
	TenantID   string
	EndpointID string
	EventID    int64     // the event's store id (Event.ID)
	JobID      int64     // the delivery job
	Attempt    int       // the job's attempt number
	At         time.Time // when the request was sent; set by the store from the database clock when zero
	Status     int       // the HTTP status; 0 when no response came
	Latency    time.Duration
	// ResponseHeaders are the response's headers as JSON ({"Name":["v"]}), "{}" when none.
	ResponseHeaders []byte
	ResponseBody    string // the first 4 KiB of the response body
	Error           string // why the attempt failed, "" if it succeeded
}

// DeliveryAttemptListParams filters a listing of attempts, newest first.
type DeliveryAttemptListParams struct {
	TenantID   string
	EndpointID string // "" for any
	EventID    int64  // 0 for any
	Before     int64  // 0 for the first page; else only ids < Before
	Limit      int    // 0 for no limit
}

// Definition is a stored piece of a tenant's routing configuration: a
// rule, an inbound source or an outbound endpoint. The engine owns its
// meaning: the store keeps the specification as JSON.
type Definition struct {
	Kind     string // KindRule, KindSource, KindEndpoint
	ID       string // unique in the store, whatever the tenant and kind
	TenantID string
	Name     string // unique within the tenant and kind
	Spec     []byte // JSON
	// Set by the store, from the database clock.
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version is 1 when created, and one more after every update. Given
	// to UpdateDefinition, it makes the update conditional: a
	// read-modify-write that lost a race fails with ErrChanged instead of
	// undoing the other change.
	Version int64
}

// ErrChanged: the definition changed since the version the caller read.
var ErrChanged = errors.New("changed since it was read")

// Events is the part of the Store that keeps received events and the
// definitions (rules, sources, endpoints) that route them.
type Events interface {
	// RecordEvents records events and the jobs their rules create in one
	// transaction: all or nothing. An event whose (tenant, source, id) is
	// recorded already, by an earlier call or earlier in recs, is not
	// recorded again and its jobs are not inserted: its result carries the
	// stored event with Existing set.
	RecordEvents(ctx context.Context, recs []EventRecord) ([]RecordedEvent, error)

	// GetEvent returns one event; ErrNotFound for an unknown id or another
	// tenant's.
	GetEvent(ctx context.Context, tenantID string, id int64) (*Event, error)

	// ListEvents returns a page of events, newest first.
	ListEvents(ctx context.Context, p EventListParams) ([]*Event, error)

	// DeleteEventsBefore deletes up to limit events received before
	// before, oldest first, and returns how many.
	DeleteEventsBefore(ctx context.Context, before time.Time, limit int) (int, error)

	// EventBySource returns the tenant's event with this CloudEvents source and id; ErrNotFound if none.
	EventBySource(ctx context.Context, tenantID, source, eventID string) (*Event, error)

	// RecordDeliveryAttempt stores one attempt (a.ID and, if zero, a.At are set by the store) and returns it as stored.
	RecordDeliveryAttempt(ctx context.Context, a DeliveryAttempt) (*DeliveryAttempt, error)

	// ListDeliveryAttempts returns a page of attempts, newest first.
	ListDeliveryAttempts(ctx context.Context, p DeliveryAttemptListParams) ([]*DeliveryAttempt, error)

	// DeleteDeliveryAttemptsBefore deletes up to limit attempts made before before, oldest first, and returns how many.
	DeleteDeliveryAttemptsBefore(ctx context.Context, before time.Time, limit int) (int, error)

	// CreateDefinition stores d (CreatedAt and UpdatedAt from the
	// database clock) and sends a NotifyDefinitions; ErrConflict if its id
	// is taken, or the tenant has a definition of its kind and name.
	CreateDefinition(ctx context.Context, d Definition) (*Definition, error)

	// GetDefinition returns one definition of a kind; ErrNotFound for an
	// unknown id, another kind's, or another tenant's. With tenantID "" it
	// finds the definition whatever its tenant (an inbound source, found
	// by the id in its URL).
	GetDefinition(ctx context.Context, kind, tenantID, id string) (*Definition, error)

	// ListDefinitions returns the tenant's definitions of a kind ordered
	// by id, after the id after ("" for the first page), at most limit
	// (0: all).
	ListDefinitions(ctx context.Context, kind, tenantID, after string, limit int) ([]*Definition, error)

	// UpdateDefinition replaces the name and spec of definition (d.Kind,
	// d.TenantID, d.ID), sets UpdatedAt, increments Version and sends a
	// NotifyDefinitions; ErrNotFound for an unknown one, ErrConflict if
	// another has the name. With d.Version set, only if the stored
	// version is d.Version, else ErrChanged.
	UpdateDefinition(ctx context.Context, d Definition) (*Definition, error)

	// DeleteDefinition deletes a definition and sends a NotifyDefinitions;
	// ErrNotFound for an unknown id, another kind's or another tenant's.
	DeleteDefinition(ctx context.Context, kind, tenantID, id string) error
}
