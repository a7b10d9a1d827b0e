package client

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// AuditEntry records who did what, to what, with what result: every
// mutating API request and every authentication event.
type AuditEntry struct {
	ID        string     `json:"id"`
	Time      time.Time  `json:"time"`
	TenantID  string     `json:"tenant_id"`
	Actor     AuditActor `json:"actor"`
	Action    string     `json:"action"` // "<resource>.<verb>": jobs.cancel, keys.create, auth.login_failed, …
	Target    string     `json:"target"` // the id or name acted on; "" if none
	Result    string     `json:"result"` // AuditOK, AuditDenied, AuditFailed or AuditError
	Status    int        `json:"status"` // the HTTP status answered; 0 if none
	ClientIP  string     `json:"client_ip"`
	RequestID string     `json:"request_id"`
	Detail    string     `json:"detail"`

	// Raw is the entry exactly as the server sent it, including fields this
	// version of the client does not know. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's audit entry shape, keeping a copy in Raw.
func (e *AuditEntry) UnmarshalJSON(b []byte) error {
	type plain AuditEntry
	*e = AuditEntry{}
	if err := json.Unmarshal(b, (*plain)(e)); err != nil {
		return err
	}
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
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

// AuditParams filters ListAudit; empty fields do not filter.
type AuditParams struct {
	Actor string // the actor's id: a key or user id, or the email of a failed login
	// Action is exact ("jobs.cancel"), or a prefix when it ends in "." or
	// "*" ("jobs." or "auth.*").
	Action string
	Target string
	Result string    // AuditOK, AuditDenied, AuditFailed or AuditError
	Since  time.Time // entries at or after
	Until  time.Time // entries before
	// AllTenants reads every tenant's entries; only instance
	// administrators may.
	AllTenants bool
	Limit      int    // entries per page, 1 to 1000; 0 for the server's default (100)
	Cursor     string // a previous page's NextCursor; "" for the first page
}

// AuditPage is one page of ListAudit.
type AuditPage = Page[AuditEntry]

// ListAudit returns one page of the tenant's audit log, newest first.
// Reading it needs the admin role.
func (c *Client) ListAudit(ctx context.Context, p AuditParams) (*AuditPage, error) {
	q := ListParams{Limit: p.Limit, Cursor: p.Cursor}.query()
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("actor", p.Actor)
	set("action", p.Action)
	set("target", p.Target)
	set("result", p.Result)
	if !p.Since.IsZero() {
		q.Set("since", p.Since.Format(time.RFC3339Nano))
	}
	if !p.Until.IsZero() {
		q.Set("until", p.Until.Format(time.RFC3339Nano))
	}
	if p.AllTenants {
		q.Set("all_tenants", strconv.FormatBool(true))
	}
	return listPage[AuditEntry](ctx, c, "/v1/audit", q)
}
