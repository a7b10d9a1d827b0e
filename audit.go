package switchyard

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// AuditEntry records who did what, to what, with what result: every
// mutating API request and every authentication event.
type AuditEntry struct {
	ID        string     `json:"id"`
	Time      time.Time  `json:"time"`
	TenantID  string     `json:"tenant_id"`
	Actor     AuditActor `json:"actor"`
	Action    string     `json:"action"` // "jobs.create", "auth.login_failed", …
	Target    string     `json:"target"`
	Result    string     `json:"result"` // AuditOK, AuditDenied, AuditFailed, AuditError
	Status    int        `json:"status"` // the HTTP status, 0 if none
	ClientIP  string     `json:"client_ip"`
	RequestID string     `json:"request_id"`
	Detail    string     `json:"detail"`
}

// AuditActor is who acted.
type AuditActor struct {
	Type string `json:"type"` // "key", "user", "anonymous" or "system"
	ID   string `json:"id"`   // the key or user id; for a failed login, the email tried
}

// Audit results.
const (
	AuditOK     = "ok"     // done
	AuditDenied = "denied" // refused: credentials, role or rate limit
	AuditFailed = "failed" // refused: the request was wrong (bad input, unknown id, conflict)
	AuditError  = "error"  // the server failed
)

// AuditQuery filters AuditLog; empty fields match anything.
type AuditQuery struct {
	// AllTenants reads every tenant's entries, not only this client's.
	AllTenants bool
	ActorID    string
	// Action is exact, or a prefix when it ends in "." or "*".
	Action string
	Target string
	Result string
	Since  time.Time
	Until  time.Time
	Cursor string
	Limit  int // default 100, at most 1000
}

// RecordAudit queues an entry for the audit log. Entries are written in
// batches within milliseconds; RecordAudit blocks only while the store is
// far behind, until ctx ends.
func (c *Client) RecordAudit(ctx context.Context, e AuditEntry) error {
	if e.TenantID == "" {
		e.TenantID = c.cfg.TenantID
	}
	return c.audit.Record(ctx, store.AuditEntry{
		Time: e.Time, TenantID: e.TenantID, ActorType: e.Actor.Type, ActorID: e.Actor.ID,
		Action: e.Action, Target: e.Target, Result: e.Result, Status: e.Status,
		ClientIP: e.ClientIP, RequestID: e.RequestID, Detail: e.Detail,
	})
}

// AuditLog returns a page of this client's tenant's audit entries, newest
// first, and the next page's cursor. Entries this process recorded before
// the call are written first, so they are in it.
func (c *Client) AuditLog(ctx context.Context, q AuditQuery) ([]*AuditEntry, string, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return nil, "", err
	}
	var before int64
	if q.Cursor != "" {
		if before, err = strconv.ParseInt(q.Cursor, 10, 64); err != nil || before <= 0 {
			return nil, "", invalid("malformed cursor %q", q.Cursor)
		}
	}
	if err := c.audit.Flush(ctx); err != nil {
		return nil, "", fmt.Errorf("switchyard: audit log: %w", err)
	}
	p := store.AuditListParams{
		TenantID: c.cfg.TenantID, ActorID: q.ActorID, Action: q.Action, Target: q.Target,
		Result: q.Result, Since: q.Since, Until: q.Until, BeforeID: before, Limit: limit + 1,
	}
	if q.AllTenants {
		p.TenantID = ""
	}
	es, err := c.store.ListAudit(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: audit log: %w", err)
	}
	out := make([]*AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, &AuditEntry{
			ID: strconv.FormatInt(e.ID, 10), Time: e.Time, TenantID: e.TenantID,
			Actor:  AuditActor{Type: e.ActorType, ID: e.ActorID},
			Action: e.Action, Target: e.Target, Result: e.Result, Status: e.Status,
			ClientIP: e.ClientIP, RequestID: e.RequestID, Detail: e.Detail,
		})
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}
