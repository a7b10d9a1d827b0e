package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/client"
)

const auditDescription = `
Prints the tenant's audit log, newest first: every mutating request
(jobs.cancel, keys.create, users.update, …) and every login, refresh and
logout, with who did it, to what, and the result: ok, denied (credentials,
role or rate limit), failed (bad input, unknown id, conflict) or error.
Reading it needs the admin role. One page is printed; when there are more,
the cursor for the next one goes to stderr ("next cursor: …"). --all
follows the cursors to the end.

Examples:
  switchyard audit --action auth. --result denied --since 24h
  switchyard audit --actor key_… --tenant acme --all --json`

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit [flags]", "", stderr)
	setUsage(fs, auditDescription)
	cf := newClientFlags(fs, stdout)
	var (
		p            client.AuditParams
		since, until string
	)
	fs.StringVar(&p.Action, "action", "", "only this `action`, e.g. jobs.cancel; ending in . or * it is a prefix: auth. or jobs.*")
	fs.StringVar(&p.Actor, "actor", "", "only this actor's entries: a key or user `id`, or the email of a failed login")
	fs.StringVar(&p.Target, "target", "", "only entries about this `id` or name")
	fs.StringVar(&p.Result, "result", "", "only this `result`: ok, denied, failed or error")
	fs.StringVar(&since, "since", "", "only entries at or after this `time`: RFC 3339 (2026-01-02T15:04:05Z) or a duration ago (24h)")
	fs.StringVar(&until, "until", "", "only entries before this `time`: RFC 3339 or a duration ago")
	fs.BoolVar(&p.AllTenants, "all-tenants", false, "read every tenant's entries (instance administrators only)")
	pf := definePageFlags(fs, "entries")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	now := time.Now()
	if p.Since, err = pastTime(since, now); err != nil {
		return cf.usageError("--since: %v", err)
	}
	if p.Until, err = pastTime(until, now); err != nil {
		return cf.usageError("--until: %v", err)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	head := "TIME\tACTOR\tACTION\tTARGET\tRESULT\tSTATUS\tDETAIL"
	if p.AllTenants {
		head = "TIME\tTENANT\tACTOR\tACTION\tTARGET\tRESULT\tSTATUS\tDETAIL"
	}
	return cf.explain(listPages(cf, pf, stdout, stderr, head,
		func(lp client.ListParams) (*client.Page[client.AuditEntry], error) {
			p.Limit, p.Cursor = lp.Limit, lp.Cursor
			return c.ListAudit(ctx, p)
		},
		func(e *client.AuditEntry) json.RawMessage { return e.Raw },
		func(w io.Writer, e *client.AuditEntry) error {
			cols := []string{compactTime(e.Time)}
			if p.AllTenants {
				cols = append(cols, e.TenantID)
			}
			actor := e.Actor.Type
			if e.Actor.ID != "" {
				actor += ":" + e.Actor.ID
			}
			status := "-"
			if e.Status != 0 {
				status = itoa(e.Status)
			}
			cols = append(cols, actor, e.Action, orDash(e.Target), e.Result, status, orDash(oneLine(e.Detail)))
			_, err := fmt.Fprintln(w, strings.Join(cols, "\t"))
			return err
		}))
}

// pastTime reads an RFC 3339 time, or a duration meaning that long before
// now; "" is the zero time.
func pastTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time such as 2026-01-02T15:04:05Z nor a duration such as 24h", v)
	}
	return now.Add(-d), nil
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
