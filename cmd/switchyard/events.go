package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/client"
)

const eventsDescription = `Sends CloudEvents to a tenant (--tenant, or the credential's own) on a
Switchyard server (--server, default http://localhost:8080), and lists and
prints the events it recorded, with what its rules did with each: the jobs
they enqueued, the topics they published to, and their errors. Sending
needs the operator role.`

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "events", eventsDescription, []subcommand{
		{"send", "send one CloudEvent and print what the rules did", eventsSend},
		{"list", "list recorded events, newest first", eventsList},
		{"get", "print one recorded event", eventsGet},
	}, args, stdout, stderr)
}

func eventsSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events send --type TYPE --source SOURCE [flags]", "", stderr)
	setUsage(fs, `
Sends one CloudEvent (structured mode) and prints the recorded event with
its dispatch: one line per rule whose types matched. An event whose source
and id were sent before is a repeat: the stored event is printed, marked
"repeat", and nothing happens again.

Example:
  switchyard events send --type image.uploaded --source /uploads \
    --subject avatars/42 --data '{"url":"https://cdn.example/a.png","size":2048}'`)
	cf := newClientFlags(fs, stdout)
	var ev client.CloudEvent
	var data, dataFile string
	fs.StringVar(&ev.Type, "type", "", "the event's `type`, such as image.uploaded (required)")
	fs.StringVar(&ev.Source, "source", "", "the event's `source`, a URI reference such as /uploads (required)")
	fs.StringVar(&ev.ID, "id", "", "the event's `id` (default: a random one)")
	fs.StringVar(&ev.Subject, "subject", "", "what the event is about, within its source")
	fs.StringVar(&data, "data", "", "the event's data: a JSON value")
	fs.StringVar(&dataFile, "data-file", "", "read the event's data, a JSON value, from this `file` (- for stdin)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	switch {
	case ev.Type == "" || ev.Source == "":
		return cf.usageError("--type and --source are required")
	case data != "" && dataFile != "":
		return cf.usageError("give --data or --data-file, not both")
	}
	if dataFile != "" {
		var b []byte
		if dataFile == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(dataFile)
		}
		if err != nil {
			return fmt.Errorf("--data-file: %w", err)
		}
		data = string(b)
	}
	if data != "" {
		if !json.Valid([]byte(data)) {
			return cf.usageError("the event's data must be JSON, such as '{\"n\":1}': %.80s", strings.TrimSpace(data))
		}
		ev.Data = json.RawMessage(data)
		ev.DataContentType = "application/json"
	}
	if ev.ID == "" {
		ev.ID = rand.Text()
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	e, existing, err := c.SendEvent(ctx, ev)
	if err != nil {
		return cf.explain(err)
	}
	if cf.jsonOut {
		return printJSON(stdout, e.Raw, e)
	}
	if existing {
		fmt.Fprintf(stdout, "repeat: event %s (source %s, id %s) was recorded before; nothing happened again\n\n", e.ID, e.Event.Source, e.Event.ID)
	}
	return printEvent(stdout, e)
}

func eventsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events list [flags]", "", stderr)
	setUsage(fs, `
Lists the tenant's recorded events, newest first, with how many rules
matched each and the jobs they enqueued. One page is printed; when there
are more, the cursor for the next one goes to stderr ("next cursor: …").
--all follows the cursors to the end.`)
	cf := newClientFlags(fs, stdout)
	pf := definePageFlags(fs, "events")
	var p client.ListEventsParams
	var since, until string
	fs.StringVar(&p.Type, "type", "", "only events of this `type`")
	fs.StringVar(&p.Source, "source", "", "only events from this `source`")
	fs.StringVar(&p.Subject, "subject", "", "only events about this `subject`")
	fs.StringVar(&since, "since", "", "only events at or after this `time` (RFC 3339, or a duration ago such as 1h)")
	fs.StringVar(&until, "until", "", "only events before this `time` (RFC 3339, or a duration ago)")
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	if p.Since, err = parseWhen(since); err != nil {
		return cf.usageError("--since: %v", err)
	}
	if p.Until, err = parseWhen(until); err != nil {
		return cf.usageError("--until: %v", err)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	return cf.explain(listPages(cf, pf, stdout, stderr, "ID\tTYPE\tSOURCE\tEVENT_ID\tSUBJECT\tRECEIVED\tRULES\tJOBS\tERRORS",
		func(lp client.ListParams) (*client.Page[client.Event], error) {
			p.Limit, p.Cursor = lp.Limit, lp.Cursor
			return c.ListEvents(ctx, p)
		},
		func(e *client.Event) json.RawMessage { return e.Raw },
		func(w io.Writer, e *client.Event) error {
			matched, jobs, errs := dispatchCounts(e)
			_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\n", e.ID, e.Event.Type, e.Event.Source, e.Event.ID,
				orDash(e.Event.Subject), compactTime(e.ReceivedAt), matched, len(e.Dispatch), jobs, errs)
			return err
		}))
}

// parseWhen reads an RFC 3339 time or a duration before now; "" is zero.
func parseWhen(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration (1h), got %q", v)
	}
	return t, nil
}

func eventsGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events get ID [flags]", "", stderr)
	setUsage(fs, `
Prints the recorded event with this id (the server's, as events list and
events send show it, not the CloudEvent's), with what each rule did.`)
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(cf, pos, "event ID")
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	e, err := c.GetEvent(ctx, id)
	if err != nil {
		return cf.explain(err)
	}
	if cf.jsonOut {
		return printJSON(stdout, e.Raw, e)
	}
	return printEvent(stdout, e)
}

// dispatchCounts counts the rules that matched, the jobs they enqueued and
// the errors of rules and actions.
func dispatchCounts(e *client.Event) (matched, jobs, errs int) {
	for _, d := range e.Dispatch {
		if d.Matched {
			matched++
		}
		if d.Error != "" {
			errs++
		}
		for _, a := range d.Actions {
			if a.JobID != "" {
				jobs++
			}
			if a.Error != "" {
				errs++
			}
		}
	}
	return matched, jobs, errs
}

func printEvent(w io.Writer, e *client.Event) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", e.ID)
	row("received_at", fullTime(&e.ReceivedAt))
	row("type", e.Event.Type)
	row("source", e.Event.Source)
	row("event_id", e.Event.ID)
	row("subject", orDash(e.Event.Subject))
	row("time", fullTime(e.Event.Time))
	switch {
	case len(e.Event.Data) > 0:
		row("data", truncateText(string(e.Event.Data), 200))
	case e.Event.DataBase64 != "":
		row("data", fmt.Sprintf("(%s, base64) %s", orDash(e.Event.DataContentType), truncateText(e.Event.DataBase64, 60)))
	default:
		row("data", "-")
	}
	if len(e.Dispatch) == 0 {
		row("dispatch", "no rule matched its type")
	}
	for _, d := range e.Dispatch {
		what := "filter false: nothing done"
		switch {
		case d.Error != "":
			what = "error: " + d.Error
		case d.Matched:
			var acts []string
			for _, a := range d.Actions {
				switch {
				case a.Error != "":
					acts = append(acts, a.Action+" failed: "+a.Error)
				case a.JobID != "" && a.Existing:
					acts = append(acts, "job "+a.JobID+" (existing)")
				case a.JobID != "":
					acts = append(acts, "job "+a.JobID)
				case a.Topic != "":
					acts = append(acts, "published to "+a.Topic)
				default:
					acts = append(acts, a.Action)
				}
			}
			what = "matched: " + strings.Join(acts, ", ")
		}
		row("rule "+d.Rule, what)
	}
	return tw.Flush()
}

// truncateText shortens s to n characters, marking the cut.
func truncateText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
