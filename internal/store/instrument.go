package store

import (
	"context"
	"time"
)

// Observer is told how long each store operation took, by operation name
// ("insert", "lease", …), and whether it failed.
type Observer func(op string, d time.Duration, err error)

// Instrument wraps s so every operation reports its latency to observe.
// Listen, Backend, Close and the Access, Hub, Workers and Events methods
// pass straight through.
func Instrument(s Store, observe Observer) Store {
	return &instrumented{Access: s, Hub: s, Workers: s, Events: s, s: s, observe: observe}
}

// Unwrap returns the store Instrument wrapped, or s itself; for the few
// driver-specific calls (a PostgreSQL enqueue inside the caller's
// transaction).
func Unwrap(s Store) Store {
	if i, ok := s.(*instrumented); ok {
		return i.s
	}
	return s
}

type instrumented struct {
	// Access passes through unobserved: its calls are rare next to the
	// job engine's.
	Access
	// Hub passes through unobserved too: the hub has its own metrics, and
	// its sends are not the engine's latency.
	Hub
	// Workers passes through too: the node registry is written every few
	// seconds per node, and rescues are rare.
	Workers
	// Events passes through: the event API has its own request metrics,
	// and a recording is one transaction like an insert.
	Events
	s       Store
	observe Observer
}

func (i *instrumented) done(op string, start time.Time, err error) {
	i.observe(op, time.Since(start), err)
}

func (i *instrumented) Backend() string { return i.s.Backend() }

func (i *instrumented) Migrate(ctx context.Context) (err error) {
	defer func(t time.Time) { i.done("migrate", t, err) }(time.Now())
	return i.s.Migrate(ctx)
}

func (i *instrumented) Insert(ctx context.Context, jobs []InsertParams) (_ []InsertResult, err error) {
	defer func(t time.Time) { i.done("insert", t, err) }(time.Now())
	return i.s.Insert(ctx, jobs)
}

func (i *instrumented) Lease(ctx context.Context, p LeaseParams) (_ []*Job, err error) {
	defer func(t time.Time) { i.done("lease", t, err) }(time.Now())
	return i.s.Lease(ctx, p)
}

func (i *instrumented) Complete(ctx context.Context, cs []Completion) (_ []error, err error) {
	defer func(t time.Time) { i.done("complete", t, err) }(time.Now())
	return i.s.Complete(ctx, cs)
}

func (i *instrumented) Heartbeat(ctx context.Context, leases []Lease, extend time.Duration) (_ []Lease, err error) {
	defer func(t time.Time) { i.done("heartbeat", t, err) }(time.Now())
	return i.s.Heartbeat(ctx, leases, extend)
}

func (i *instrumented) SetProgress(ctx context.Context, l Lease, progress []byte) (err error) {
	defer func(t time.Time) { i.done("set_progress", t, err) }(time.Now())
	return i.s.SetProgress(ctx, l, progress)
}

func (i *instrumented) Get(ctx context.Context, tenantID string, id int64) (_ *Job, err error) {
	defer func(t time.Time) { i.done("get", t, err) }(time.Now())
	return i.s.Get(ctx, tenantID, id)
}

func (i *instrumented) List(ctx context.Context, p ListParams) (_ []*Job, err error) {
	defer func(t time.Time) { i.done("list", t, err) }(time.Now())
	return i.s.List(ctx, p)
}

func (i *instrumented) Cancel(ctx context.Context, tenantID string, id int64) (_ *Job, err error) {
	defer func(t time.Time) { i.done("cancel", t, err) }(time.Now())
	return i.s.Cancel(ctx, tenantID, id)
}

func (i *instrumented) Discard(ctx context.Context, tenantID string, id int64) (_ *Job, err error) {
	defer func(t time.Time) { i.done("discard", t, err) }(time.Now())
	return i.s.Discard(ctx, tenantID, id)
}

func (i *instrumented) Retry(ctx context.Context, tenantID string, id int64) (_ *Job, err error) {
	defer func(t time.Time) { i.done("retry", t, err) }(time.Now())
	return i.s.Retry(ctx, tenantID, id)
}

func (i *instrumented) Delete(ctx context.Context, tenantID string, id int64) (_ *Job, err error) {
	defer func(t time.Time) { i.done("delete", t, err) }(time.Now())
	return i.s.Delete(ctx, tenantID, id)
}

func (i *instrumented) SetQueuePaused(ctx context.Context, tenantID, queue string, paused bool) (err error) {
	defer func(t time.Time) { i.done("set_queue_paused", t, err) }(time.Now())
	return i.s.SetQueuePaused(ctx, tenantID, queue, paused)
}

func (i *instrumented) SetQueueConcurrency(ctx context.Context, tenantID, queue string, n int) (err error) {
	defer func(t time.Time) { i.done("set_queue_concurrency", t, err) }(time.Now())
	return i.s.SetQueueConcurrency(ctx, tenantID, queue, n)
}

func (i *instrumented) Queues(ctx context.Context, tenantID string) (_ []Queue, err error) {
	defer func(t time.Time) { i.done("queues", t, err) }(time.Now())
	return i.s.Queues(ctx, tenantID)
}

func (i *instrumented) QueueSettings(ctx context.Context, tenantID, queue string) (_ QueueSettings, err error) {
	defer func(t time.Time) { i.done("queue_settings", t, err) }(time.Now())
	return i.s.QueueSettings(ctx, tenantID, queue)
}

func (i *instrumented) QueueNames(ctx context.Context, tenantID string) (_ []string, err error) {
	defer func(t time.Time) { i.done("queue_names", t, err) }(time.Now())
	return i.s.QueueNames(ctx, tenantID)
}

func (i *instrumented) RescueExpired(ctx context.Context, limit int, retryAt func(*Job) time.Duration) (_ int, _ time.Duration, err error) {
	defer func(t time.Time) { i.done("rescue_expired", t, err) }(time.Now())
	return i.s.RescueExpired(ctx, limit, retryAt)
}

func (i *instrumented) PromoteScheduled(ctx context.Context, limit int) (_ int, _ time.Duration, err error) {
	defer func(t time.Time) { i.done("promote_scheduled", t, err) }(time.Now())
	return i.s.PromoteScheduled(ctx, limit)
}

func (i *instrumented) DeleteFinished(ctx context.Context, p RetentionParams) (_ int, err error) {
	defer func(t time.Time) { i.done("delete_finished", t, err) }(time.Now())
	return i.s.DeleteFinished(ctx, p)
}

func (i *instrumented) PurgeQueue(ctx context.Context, tenantID, queue string) (_ int, err error) {
	defer func(t time.Time) { i.done("purge_queue", t, err) }(time.Now())
	return i.s.PurgeQueue(ctx, tenantID, queue)
}

func (i *instrumented) TryLead(ctx context.Context, name, nodeID string, ttl time.Duration) (_ bool, err error) {
	defer func(t time.Time) { i.done("try_lead", t, err) }(time.Now())
	return i.s.TryLead(ctx, name, nodeID, ttl)
}

func (i *instrumented) Resign(ctx context.Context, name, nodeID string) (err error) {
	defer func(t time.Time) { i.done("resign", t, err) }(time.Now())
	return i.s.Resign(ctx, name, nodeID)
}

func (i *instrumented) CreateAPIKey(ctx context.Context, k APIKey, onlyIfNone bool) (_ bool, err error) {
	defer func(t time.Time) { i.done("create_api_key", t, err) }(time.Now())
	return i.s.CreateAPIKey(ctx, k, onlyIfNone)
}

func (i *instrumented) APIKeyByHash(ctx context.Context, hash []byte) (_ *APIKey, err error) {
	defer func(t time.Time) { i.done("api_key_by_hash", t, err) }(time.Now())
	return i.s.APIKeyByHash(ctx, hash)
}

func (i *instrumented) TouchAPIKey(ctx context.Context, id string) (err error) {
	defer func(t time.Time) { i.done("touch_api_key", t, err) }(time.Now())
	return i.s.TouchAPIKey(ctx, id)
}

func (i *instrumented) RevokeAPIKey(ctx context.Context, tenantID, id string) (err error) {
	defer func(t time.Time) { i.done("revoke_api_key", t, err) }(time.Now())
	return i.s.RevokeAPIKey(ctx, tenantID, id)
}

func (i *instrumented) Listen(fn func(Notification)) { i.s.Listen(fn) }

func (i *instrumented) Now(ctx context.Context) (_ time.Time, err error) {
	defer func(t time.Time) { i.done("now", t, err) }(time.Now())
	return i.s.Now(ctx)
}

func (i *instrumented) Ping(ctx context.Context) (err error) {
	defer func(t time.Time) { i.done("ping", t, err) }(time.Now())
	return i.s.Ping(ctx)
}

func (i *instrumented) PendingMigrations(ctx context.Context) (_ int, err error) {
	defer func(t time.Time) { i.done("pending_migrations", t, err) }(time.Now())
	return i.s.PendingMigrations(ctx)
}

func (i *instrumented) Close() error { return i.s.Close() }
