package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/switchyard-dev/switchyard/client"
)

const keysDescription = `Creates, lists, inspects and revokes the API keys of a tenant (--tenant,
or the credential's own). A key's secret is shown once, when it is
created. Managing keys needs the admin role, and no key gets a role above
its creator's.`

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "keys", keysDescription, []subcommand{
		{"create", "create a key and print its secret, once", keysCreate},
		{"list", "list the tenant's keys, revoked ones included", keysList},
		{"get", "print one key", keysGet},
		{"revoke", "end a key at once", keysRevoke},
	}, args, stdout, stderr)
}

func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys create NAME --role ROLE [flags]", "", stderr)
	setUsage(fs, `
Creates an API key named NAME (what it is for) in the tenant and prints it
with its secret. The secret is shown only this once: the server keeps a
hash of it. With --json, the answer {"key": …, "secret": "sy_…"} is printed.

Example:
  switchyard keys create grafana --role viewer --expires-in 2160h --tenant acme`)
	cf := newClientFlags(fs, stdout)
	var (
		req       client.KeyRequest
		expiresIn time.Duration
	)
	fs.StringVar(&req.Role, "role", "", "the key's `role`: "+tenantRoles+", or instance_admin")
	fs.DurationVar(&expiresIn, "expires-in", 0, "the key stops working this long from now, e.g. 720h (default: never)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if req.Name, err = oneID(cf, pos, "key NAME"); err != nil {
		return err
	}
	if req.Role == "" {
		return cf.usageError("--role is required: %s, or instance_admin", tenantRoles)
	}
	switch {
	case expiresIn < 0:
		return cf.usageError("--expires-in may not be negative")
	case expiresIn > 0:
		req.ExpiresAt = time.Now().Add(expiresIn).UTC()
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	key, secret, err := c.CreateKey(ctx, req)
	if err != nil {
		return cf.explain(err)
	}
	if cf.jsonOut {
		return printJSON(stdout, nil, map[string]any{"key": key.Raw, "secret": secret})
	}
	if err := printKey(stdout, key); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "\nThe key's secret, shown only this once; store it now:\n\n    %s\n\n", secret)
	return err
}

func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys list [flags]", "", stderr)
	setUsage(fs, `
Lists the tenant's API keys in id order, revoked and expired ones
included. One page is printed; when there are more, the cursor for the
next one goes to stderr ("next cursor: …"). --all follows the cursors to
the end.`)
	cf := newClientFlags(fs, stdout)
	pf := definePageFlags(fs, "keys")
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	now := time.Now()
	return cf.explain(listPages(cf, pf, stdout, stderr, "ID\tNAME\tROLE\tPREFIX\tSTATUS\tEXPIRES\tLAST_USED",
		func(p client.ListParams) (*client.Page[client.APIKey], error) {
			return c.ListKeys(ctx, p)
		},
		func(k *client.APIKey) json.RawMessage { return k.Raw },
		func(w io.Writer, k *client.APIKey) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Prefix, keyStatus(k, now),
				optTime(k.ExpiresAt), optTime(k.LastUsedAt))
			return err
		}))
}

func keysGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return keyAction(ctx, "get", "Prints the API key with this id, revoked or not; never its secret.", args, stdout, stderr,
		(*client.Client).GetKey)
}

func keysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return keyAction(ctx, "revoke", "Revokes the API key with this id: it stops working at once, on every node.", args, stdout, stderr,
		func(c *client.Client, ctx context.Context, id string) (*client.APIKey, error) {
			return nil, c.RevokeKey(ctx, id)
		})
}

// keyAction runs a subcommand that takes one key id and prints the key the
// call returns, if any.
func keyAction(ctx context.Context, verb, description string, args []string, stdout, stderr io.Writer,
	call func(*client.Client, context.Context, string) (*client.APIKey, error)) error {
	fs := newFlagSet("keys "+verb+" ID [flags]", "", stderr)
	setUsage(fs, description)
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "key ID")
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	k, err := call(c, ctx, id)
	if err != nil {
		return cf.explain(err)
	}
	if k == nil {
		if !cf.jsonOut {
			fmt.Fprintf(stdout, "key %s revoked\n", id)
		}
		return nil
	}
	if cf.jsonOut {
		return printJSON(stdout, k.Raw, k)
	}
	return printKey(stdout, k)
}

// keyStatus is active, revoked or expired.
func keyStatus(k *client.APIKey, now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired"
	}
	return "active"
}

func optTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return compactTime(*t)
}

func printKey(w io.Writer, k *client.APIKey) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", k.ID)
	row("name", k.Name)
	row("tenant", k.TenantID)
	row("role", k.Role)
	row("prefix", k.Prefix)
	row("status", keyStatus(k, time.Now()))
	row("created_at", fullTime(&k.CreatedAt))
	row("expires_at", fullTime(k.ExpiresAt))
	row("last_used_at", fullTime(k.LastUsedAt))
	row("revoked_at", fullTime(k.RevokedAt))
	return tw.Flush()
}
