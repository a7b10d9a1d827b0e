package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/switchyard-dev/switchyard/client"
)

const sourcesDescription = `Creates, lists, prints and deletes the inbound webhook sources of a tenant
(--tenant, or the credential's own). A provider posts to a source's path,
/hooks/{id} on the server, with no API key: its signature, checked with the
source's scheme (standard-webhooks, github, stripe, meta, slack, hmac) and
secrets, is the credential. A verified request becomes an event of the
tenant, routed by its rules. Managing sources needs the admin role; lower
roles see secrets redacted.`

func runSources(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "sources", sourcesDescription, []subcommand{
		{"create", "create an inbound source", sourcesCreate},
		{"list", "list the tenant's sources", sourcesList},
		{"get", "print one source, with its secrets", sourcesGet},
		{"delete", "delete a source", sourcesDelete},
	}, args, stdout, stderr)
}

func sourcesCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sources create --name NAME --scheme SCHEME [flags]", "", stderr)
	setUsage(fs, `
Creates an inbound source and prints it, its secrets whole: give them to the
provider, and point it at the server's URL followed by the source's path.
Without --secret one is generated (whsec_… for standard-webhooks). Several
--secret flags make several active secrets, for rotating one.

Example:
  switchyard sources create --name github --scheme github --secret "$GITHUB_WEBHOOK_SECRET"`)
	cf := newClientFlags(fs, stdout)
	var req client.SourceRequest
	var secrets stringsFlag
	fs.StringVar(&req.Name, "name", "", "the source's `name`, unique in the tenant (required)")
	fs.StringVar(&req.Scheme, "scheme", "", "the signature `scheme`: standard-webhooks, github, stripe, meta, slack or hmac (required)")
	fs.Var(&secrets, "secret", "a signing `secret` (repeatable; default: a generated one)")
	fs.IntVar(&req.ToleranceSeconds, "tolerance", 0, "how far a signed timestamp may be from now, in `seconds` (default 300)")
	fs.StringVar(&req.VerifyToken, "verify-token", "", "meta: the `token` of the subscription handshake (default: a generated one)")
	fs.StringVar(&req.Header, "header", "", "hmac: the signature `header` (required for hmac)")
	fs.StringVar(&req.Algorithm, "algorithm", "", "hmac: sha1, sha256 or sha512 (default sha256)")
	fs.StringVar(&req.Encoding, "encoding", "", "hmac: hex or base64 (default hex)")
	fs.StringVar(&req.Prefix, "prefix", "", "hmac: a `prefix` stripped from the signature, such as sha256=")
	fs.StringVar(&req.TimestampHeader, "timestamp-header", "", "hmac: a `header` with the unix time, signed as <time>.<body>")
	fs.StringVar(&req.IDHeader, "id-header", "", "hmac: a `header` with the delivery id")
	fs.StringVar(&req.EventType, "event-type", "", "hmac: the `type` of the events (default webhook)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	if req.Name == "" || req.Scheme == "" {
		return cf.usageError("--name and --scheme are required")
	}
	req.Secrets = secrets
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	s, err := c.CreateSource(ctx, req)
	if err != nil {
		return cf.explain(err)
	}
	return printSource(stdout, s, c.BaseURL(), cf.jsonOut)
}

func sourcesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sources list [flags]", "", stderr)
	setUsage(fs, `
Lists the tenant's sources in id order. One page is printed; when there are
more, the cursor for the next one goes to stderr ("next cursor: …"). --all
follows the cursors to the end.`)
	cf := newClientFlags(fs, stdout)
	pf := definePageFlags(fs, "sources")
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	return cf.explain(listPages(cf, pf, stdout, stderr, "ID\tNAME\tSCHEME\tSECRETS\tPATH\tUPDATED",
		func(p client.ListParams) (*client.Page[client.Source], error) {
			return c.ListSources(ctx, p)
		},
		func(s *client.Source) json.RawMessage { return s.Raw },
		func(w io.Writer, s *client.Source) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Name, s.Scheme, len(s.Secrets), s.Path, compactTime(s.UpdatedAt))
			return err
		}))
}

func sourcesGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return idCommand(ctx, "sources get ID [flags]", "\nPrints the source with this id (secrets redacted below the admin role).", "source ID", args, stdout, stderr,
		func(c *client.Client, id string, jsonOut bool) error {
			s, err := c.GetSource(ctx, id)
			if err != nil {
				return err
			}
			return printSource(stdout, s, c.BaseURL(), jsonOut)
		})
}

func sourcesDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return idCommand(ctx, "sources delete ID [flags]", "\nDeletes the source with this id: requests to its path answer 404 from now on.", "source ID", args, stdout, stderr,
		func(c *client.Client, id string, jsonOut bool) error {
			if err := c.DeleteSource(ctx, id); err != nil {
				return err
			}
			if !jsonOut {
				fmt.Fprintf(stdout, "source %s deleted\n", id)
			}
			return nil
		})
}

func printSource(w io.Writer, s *client.Source, base string, asJSON bool) error {
	if asJSON {
		return printJSON(w, s.Raw, s)
	}
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", s.ID)
	row("name", s.Name)
	row("scheme", s.Scheme)
	row("url", strings.TrimSuffix(base, "/")+s.Path)
	for i, sec := range s.Secrets {
		row(fmt.Sprintf("secrets[%d]", i), sec)
	}
	if s.VerifyToken != "" {
		row("verify_token", s.VerifyToken)
	}
	if s.ToleranceSeconds != 0 {
		row("tolerance", itoa(s.ToleranceSeconds)+"s")
	}
	for _, kv := range [][2]string{{"header", s.Header}, {"algorithm", s.Algorithm}, {"encoding", s.Encoding}, {"prefix", s.Prefix},
		{"timestamp_header", s.TimestampHeader}, {"id_header", s.IDHeader}, {"event_type", s.EventType}} {
		if kv[1] != "" {
			row(kv[0], kv[1])
		}
	}
	row("created_at", fullTime(&s.CreatedAt))
	row("updated_at", fullTime(&s.UpdatedAt))
	return tw.Flush()
}

const endpointsDescription = `Creates, lists, prints and deletes the outbound webhook endpoints of a
tenant (--tenant, or the credential's own), rotates their signing secrets,
lists their delivery attempts and delivers an event again. Every event whose
type matches an endpoint's types is POSTed to its URL, signed per Standard
Webhooks (webhook-id, webhook-timestamp, webhook-signature), and retried
with backoff for about three days. Managing endpoints needs the admin role,
redelivering the operator role.`

func runEndpoints(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "endpoints", endpointsDescription, []subcommand{
		{"create", "create an outbound endpoint", endpointsCreate},
		{"list", "list the tenant's endpoints", endpointsList},
		{"get", "print one endpoint, with its secrets", endpointsGet},
		{"delete", "delete an endpoint", endpointsDelete},
		{"rotate-secret", "add a new signing secret; the old one signs for 24 more hours", endpointsRotate},
		{"attempts", "list an endpoint's delivery attempts, newest first", endpointsAttempts},
		{"redeliver", "deliver a recorded event to an endpoint again", endpointsRedeliver},
	}, args, stdout, stderr)
}

func endpointsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("endpoints create --name NAME --url URL [--type TYPE]... [flags]", "", stderr)
	setUsage(fs, `
Creates an outbound endpoint and prints it with its signing secret (whsec_…),
which the receiver verifies deliveries with. The server refuses to connect
to loopback and private addresses unless it runs with --allow-private.

Example:
  switchyard endpoints create --name billing --url https://billing.example.com/hooks \
    --type 'invoice.*' --header 'X-Team=billing'`)
	cf := newClientFlags(fs, stdout)
	var req client.EndpointRequest
	var types, headers stringsFlag
	fs.StringVar(&req.Name, "name", "", "the endpoint's `name`, unique in the tenant (required)")
	fs.StringVar(&req.URL, "url", "", "the `URL` deliveries are POSTed to, http or https (required)")
	fs.Var(&types, "type", "an event `type` pattern to deliver: invoice.paid, invoice.* or * (repeatable)")
	fs.Var(&headers, "header", "a `NAME=VALUE` header added to every delivery (repeatable)")
	fs.StringVar(&req.Description, "description", "", "a `description`")
	fs.IntVar(&req.MaxConcurrency, "max-concurrency", 0, "deliveries in flight at once, per node (default 10)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	if req.Name == "" || req.URL == "" {
		return cf.usageError("--name and --url are required")
	}
	req.Types = types
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return cf.usageError("--header %q: want NAME=VALUE", h)
		}
		if req.Headers == nil {
			req.Headers = map[string]string{}
		}
		req.Headers[k] = v
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	e, err := c.CreateEndpoint(ctx, req)
	if err != nil {
		return cf.explain(err)
	}
	return printEndpoint(stdout, e, cf.jsonOut)
}

func endpointsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("endpoints list [flags]", "", stderr)
	setUsage(fs, `
Lists the tenant's endpoints in id order. One page is printed; when there
are more, the cursor for the next one goes to stderr ("next cursor: …").
--all follows the cursors to the end.`)
	cf := newClientFlags(fs, stdout)
	pf := definePageFlags(fs, "endpoints")
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	return cf.explain(listPages(cf, pf, stdout, stderr, "ID\tNAME\tENABLED\tTYPES\tURL\tUPDATED",
		func(p client.ListParams) (*client.Page[client.Endpoint], error) {
			return c.ListEndpoints(ctx, p)
		},
		func(e *client.Endpoint) json.RawMessage { return e.Raw },
		func(w io.Writer, e *client.Endpoint) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Name, yesNo(!e.Disabled), orDash(strings.Join(e.Types, ",")), e.URL, compactTime(e.UpdatedAt))
			return err
		}))
}

func endpointsGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return endpointCommand(ctx, "get", "\nPrints the endpoint with this id (secrets redacted below the admin role).", args, stdout, stderr, (*client.Client).GetEndpoint)
}

func endpointsRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return endpointCommand(ctx, "rotate-secret", `
Adds a new signing secret to the endpoint and prints it. Deliveries are
signed with the new and the old secret for 24 hours (webhook-signature lists
both), so the receiver can switch to the new one; then the old one expires.`, args, stdout, stderr, (*client.Client).RotateEndpointSecret)
}

func endpointsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return idCommand(ctx, "endpoints delete ID [flags]", "\nDeletes the endpoint with this id; its pending deliveries end.", "endpoint ID", args, stdout, stderr,
		func(c *client.Client, id string, jsonOut bool) error {
			if err := c.DeleteEndpoint(ctx, id); err != nil {
				return err
			}
			if !jsonOut {
				fmt.Fprintf(stdout, "endpoint %s deleted\n", id)
			}
			return nil
		})
}

func endpointCommand(ctx context.Context, verb, description string, args []string, stdout, stderr io.Writer,
	call func(*client.Client, context.Context, string) (*client.Endpoint, error)) error {
	return idCommand(ctx, "endpoints "+verb+" ID [flags]", description, "endpoint ID", args, stdout, stderr,
		func(c *client.Client, id string, jsonOut bool) error {
			e, err := call(c, ctx, id)
			if err != nil {
				return err
			}
			return printEndpoint(stdout, e, jsonOut)
		})
}

func endpointsAttempts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("endpoints attempts ID [--event EVENT_ID] [flags]", "", stderr)
	setUsage(fs, `
Lists the endpoint's delivery attempts, newest first: when, which event and
job, the answer's status (0: none) and latency, and the error of a failed
one. One page is printed; --all follows the cursors to the end.`)
	cf := newClientFlags(fs, stdout)
	pf := definePageFlags(fs, "attempts")
	var eventID string
	fs.StringVar(&eventID, "event", "", "only the attempts to deliver this `event id` (Switchyard's, as events list prints)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "endpoint ID")
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	return cf.explain(listPages(cf, pf, stdout, stderr, "AT\tEVENT\tJOB\tATTEMPT\tSTATUS\tLATENCY\tERROR",
		func(p client.ListParams) (*client.Page[client.DeliveryAttempt], error) {
			return c.ListDeliveryAttempts(ctx, id, client.ListDeliveryAttemptsParams{EventID: eventID, Limit: p.Limit, Cursor: p.Cursor})
		},
		func(*client.DeliveryAttempt) json.RawMessage { return nil }, // printed from its fields
		func(w io.Writer, a *client.DeliveryAttempt) error {
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%.1fms\t%s\n", compactTime(a.At), a.EventID, a.JobID, a.Attempt, a.Status, a.LatencyMs, orDash(a.Error))
			return err
		}))
}

func endpointsRedeliver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("endpoints redeliver ID --event EVENT_ID [flags]", "", stderr)
	setUsage(fs, `
Delivers a recorded event to the endpoint again, as a new delivery job,
whatever became of the earlier ones, and prints the job's id.`)
	cf := newClientFlags(fs, stdout)
	var eventID string
	fs.StringVar(&eventID, "event", "", "the recorded event's `id` (Switchyard's, as events list prints; required)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "endpoint ID")
	if err != nil {
		return err
	}
	if eventID == "" {
		return cf.usageError("--event is required")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	j, err := c.Redeliver(ctx, id, eventID)
	if err != nil {
		return cf.explain(err)
	}
	if cf.jsonOut {
		return printJSON(stdout, nil, j)
	}
	_, err = fmt.Fprintf(stdout, "delivery job %s enqueued\n", j.ID)
	return err
}

// idCommand runs a subcommand that takes one id.
func idCommand(ctx context.Context, usageLine, description, what string, args []string, stdout, stderr io.Writer,
	call func(c *client.Client, id string, jsonOut bool) error) error {
	fs := newFlagSet(usageLine, "", stderr)
	setUsage(fs, description)
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, what)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	return cf.explain(call(c, id, cf.jsonOut))
}

func printEndpoint(w io.Writer, e *client.Endpoint, asJSON bool) error {
	if asJSON {
		return printJSON(w, e.Raw, e)
	}
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", e.ID)
	row("name", e.Name)
	row("url", e.URL)
	row("types", orDash(strings.Join(e.Types, ", ")))
	enabled := yesNo(!e.Disabled)
	if e.DisabledReason != "" {
		enabled += " (" + e.DisabledReason + ")"
	}
	row("enabled", enabled)
	if e.Description != "" {
		row("description", e.Description)
	}
	if e.MaxConcurrency != 0 {
		row("max_concurrency", itoa(e.MaxConcurrency))
	}
	if len(e.Headers) > 0 {
		b, _ := json.Marshal(e.Headers)
		row("headers", string(b))
	}
	for i, s := range e.Secrets {
		v := s.Secret
		if s.ExpiresAt != nil {
			v += " (expires " + fullTime(s.ExpiresAt) + ")"
		}
		row(fmt.Sprintf("secrets[%d]", i), v)
	}
	row("created_at", fullTime(&e.CreatedAt))
	row("updated_at", fullTime(&e.UpdatedAt))
	return tw.Flush()
}
