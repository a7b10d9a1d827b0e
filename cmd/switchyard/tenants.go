package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/switchyard-dev/switchyard/client"
)

const tenantsDescription = `Creates, lists, inspects and changes tenants, the isolation units every
job, queue, key and member belongs to. Creating and changing tenants needs
an instance administrator; anyone may list and read the tenants they
belong to.`

func runTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "tenants", tenantsDescription, []subcommand{
		{"create", "create a tenant", tenantsCreate},
		{"list", "list the tenants you may see", tenantsList},
		{"get", "print one tenant", tenantsGet},
		{"update", "rename a tenant or change its rate limit", tenantsUpdate},
	}, args, stdout, stderr)
}

// rateFlags are --rate-limit and --rate-burst. They have no environment
// twins: SWITCHYARD_RATE_LIMIT and SWITCHYARD_RATE_BURST are serve's
// settings, and a server's environment must not leak into a tenant.
type rateFlags struct {
	rate  float64
	burst int
}

func defineRateFlags(cf *clientFlags) *rateFlags {
	r := &rateFlags{}
	cf.fs.Float64Var(&r.rate, "rate-limit", 0, "`requests` per second each of the tenant's API keys and users may send on average,\noverriding the server's default")
	cf.fs.IntVar(&r.burst, "rate-burst", 0, "`requests` they may send at once (default: --rate-limit rounded up, at least 1); needs --rate-limit")
	onlyOnCommandLine(cf.fs, "rate-limit", "rate-burst")
	return r
}

// limit returns the limit given, nil if none, or a usage error.
func (r *rateFlags) limit(cf *clientFlags) (*client.RateLimit, error) {
	rateGiven, burstGiven := given(cf.fs, "rate-limit"), given(cf.fs, "rate-burst")
	switch {
	case burstGiven && !rateGiven:
		return nil, cf.usageError("--rate-burst needs --rate-limit")
	case !rateGiven:
		return nil, nil
	case !(r.rate > 0) || math.IsInf(r.rate, 0):
		return nil, cf.usageError("--rate-limit must be a positive number of requests per second, got %v", r.rate)
	case burstGiven && r.burst < 1:
		return nil, cf.usageError("--rate-burst must be at least 1, got %d", r.burst)
	}
	l := &client.RateLimit{RequestsPerSecond: r.rate, Burst: r.burst}
	if !burstGiven {
		l.Burst = max(1, int(math.Ceil(r.rate)))
	}
	return l, nil
}

func tenantsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenants create ID [flags]", "", stderr)
	setUsage(fs, `
Creates the tenant ID (1 to 63 lower-case letters, digits, - and _,
starting with a letter or digit; it never changes) and prints it. Needs an
instance administrator.

Example:
  switchyard tenants create acme --name "Acme Corp" --rate-limit 50 --rate-burst 100`)
	cf := newClientFlags(fs, stdout)
	var req client.TenantRequest
	fs.StringVar(&req.Name, "name", "", "the tenant's `name` for people (default: the ID)")
	rf := defineRateFlags(cf)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if req.ID, err = oneID(cf, pos, "tenant ID"); err != nil {
		return err
	}
	if req.RateLimit, err = rf.limit(cf); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	t, err := c.CreateTenant(ctx, req)
	if err != nil {
		return cf.explain(err)
	}
	return printTenant(stdout, t, cf.jsonOut)
}

func tenantsUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenants update ID [flags]", "", stderr)
	setUsage(fs, `
Changes the tenant's name or rate limit and prints it; what is not given
stays. --no-rate-limit returns the tenant to the server's default rate.
Needs an instance administrator.`)
	cf := newClientFlags(fs, stdout)
	var (
		name    string
		noLimit bool
	)
	fs.StringVar(&name, "name", "", "the tenant's new `name`")
	rf := defineRateFlags(cf)
	fs.BoolVar(&noLimit, "no-rate-limit", false, "drop the tenant's own rate limit: the server's default applies")
	onlyOnCommandLine(fs, "no-rate-limit")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "tenant ID")
	if err != nil {
		return err
	}
	var u client.TenantUpdate
	if given(fs, "name") {
		u.Name = &name
	}
	if u.RateLimit, err = rf.limit(cf); err != nil {
		return err
	}
	if noLimit {
		if u.RateLimit != nil {
			return cf.usageError("give --rate-limit or --no-rate-limit, not both")
		}
		u.ClearRateLimit = true
	}
	if u.Name == nil && u.RateLimit == nil && !u.ClearRateLimit {
		return cf.usageError("nothing to change: give --name, --rate-limit or --no-rate-limit")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	t, err := c.UpdateTenant(ctx, id, u)
	if err != nil {
		return cf.explain(err)
	}
	return printTenant(stdout, t, cf.jsonOut)
}

func tenantsGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenants get ID [flags]", "", stderr)
	setUsage(fs, "Prints the tenant. Only its members and instance administrators see it; to others it does not exist.")
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "tenant ID")
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	t, err := c.GetTenant(ctx, id)
	if err != nil {
		return cf.explain(err)
	}
	return printTenant(stdout, t, cf.jsonOut)
}

func tenantsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tenants list [flags]", "", stderr)
	setUsage(fs, `
Lists tenants in id order: every tenant to an instance administrator, else
the tenants you belong to. One page is printed; when there are more, the
cursor for the next one goes to stderr ("next cursor: …"). --all follows
the cursors to the end.`)
	cf := newClientFlags(fs, stdout)
	pf := definePageFlags(fs, "tenants")
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	return cf.explain(listPages(cf, pf, stdout, stderr, "ID\tRATE_LIMIT\tCREATED\tNAME",
		func(p client.ListParams) (*client.Page[client.Tenant], error) {
			return c.ListTenants(ctx, p)
		},
		func(t *client.Tenant) json.RawMessage { return t.Raw },
		func(w io.Writer, t *client.Tenant) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, rateText(t.RateLimit), compactTime(t.CreatedAt), t.Name)
			return err
		}))
}

// rateText is a rate limit for people.
func rateText(l *client.RateLimit) string {
	if l == nil {
		return "default"
	}
	return strconv.FormatFloat(l.RequestsPerSecond, 'g', -1, 64) + "/s,burst=" + itoa(l.Burst)
}

func printTenant(w io.Writer, t *client.Tenant, asJSON bool) error {
	if asJSON {
		return printJSON(w, t.Raw, t)
	}
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", t.ID)
	row("name", t.Name)
	row("created_at", fullTime(&t.CreatedAt))
	limit := "the server's default"
	if l := t.RateLimit; l != nil {
		limit = fmt.Sprintf("%s requests/s, burst %d", strconv.FormatFloat(l.RequestsPerSecond, 'g', -1, 64), l.Burst)
	}
	row("rate_limit", limit)
	return tw.Flush()
}
