package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/client"
)

const jobsDescription = `Enqueues, inspects, lists, cancels, retries and deletes jobs on a
Switchyard server (--server, default http://localhost:8080).`

func runJobs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "jobs", jobsDescription, []subcommand{
		{"enqueue", "enqueue a job, optionally waiting for its outcome", jobsEnqueue},
		{"get", "print one job", jobsGet},
		{"list", "list jobs, newest first", jobsList},
		{"cancel", "cancel a job that has not finished", jobsCancel},
		{"retry", "make a job run again now", jobsRetry},
		{"delete", "delete a job that is not running", jobsDelete},
	}, args, stdout, stderr)
}

func jobsEnqueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("jobs enqueue KIND [flags]", "", stderr)
	setUsage(fs, `
Enqueues one job of kind KIND and prints it. With a unique key that matches
a live job, nothing is enqueued and that job is printed instead (a note says
so on stderr). With --wait, polls the job until it is final and prints it
then; the exit status is 1 when it ended dead or cancelled.`)
	var (
		req                   client.JobRequest
		argsText, runAt       string
		delay, timeout        time.Duration
		tags                  stringsFlag
		wait                  bool
		priority, maxAttempts int
	)
	fs.StringVar(&req.Queue, "queue", "", "`name` of the queue (default: the server's, \"default\")")
	fs.StringVar(&argsText, "args", "", "the job's arguments: a JSON object, @FILE to read one from a file, or @- from stdin")
	fs.IntVar(&priority, "priority", 0, "1 (highest) to 4 (default: the server's, 2)")
	fs.DurationVar(&delay, "delay", 0, "run no earlier than this long from now, e.g. 5s")
	fs.StringVar(&runAt, "run-at", "", "run no earlier than this RFC 3339 `time`, e.g. 2030-01-02T15:04:05Z")
	fs.StringVar(&req.UniqueKey, "unique-key", "", "enqueue nothing while a live job has this `key`")
	fs.IntVar(&maxAttempts, "max-attempts", 0, "attempts before the job is dead (default: the server's)")
	fs.DurationVar(&timeout, "timeout", 0, "bound on each attempt of the job, e.g. 30s (default: none)")
	fs.Var(&tags, "tag", "a `tag` to label the job with; repeat for more")
	fs.BoolVar(&wait, "wait", false, "wait until the job succeeded, died or was cancelled, and print it then")
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cf.usageError("want exactly one KIND, got %d arguments", len(pos))
	}
	req.Kind = pos[0]
	req.Priority, req.MaxAttempts, req.Tags = priority, maxAttempts, tags
	if delay < 0 || timeout < 0 {
		return cf.usageError("--delay and --timeout may not be negative")
	}
	req.Delay, req.Timeout = delay, timeout
	if runAt != "" {
		if delay != 0 {
			return cf.usageError("give --delay or --run-at, not both")
		}
		if req.RunAt, err = time.Parse(time.RFC3339, runAt); err != nil {
			return cf.usageError("--run-at %q is not an RFC 3339 time such as 2030-01-02T15:04:05Z", runAt)
		}
	}
	if argsText != "" {
		raw, err := readArgs(argsText)
		if err != nil {
			return usageErr{err}
		}
		req.Args = raw
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	job, existing, err := c.EnqueueJob(ctx, req)
	if err != nil {
		return cf.explain(err)
	}
	if existing {
		fmt.Fprintf(stderr, "job %s already has unique key %q; nothing was enqueued\n", job.ID, req.UniqueKey)
	}
	if wait {
		if job, err = waitForJob(ctx, c, job); err != nil {
			return cf.explain(err)
		}
	}
	if err := printJob(stdout, job, cf.jsonOut); err != nil {
		return err
	}
	if wait && job.State != client.StateSucceeded {
		msg := fmt.Sprintf("job %s ended %s", job.ID, job.State)
		if n := len(job.Errors); n > 0 {
			first, _, _ := strings.Cut(job.Errors[n-1].Message, "\n")
			msg += ": " + first
		}
		return errors.New(msg)
	}
	return nil
}

// readArgs reads --args: a JSON object given inline, from @FILE, or from
// stdin with @-.
func readArgs(v string) (json.RawMessage, error) {
	b := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		var err error
		if name == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, fmt.Errorf("--args: %w", err)
		}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("--args must be a JSON object such as '{\"n\":1}': %.80s", strings.TrimSpace(string(b)))
	}
	return json.RawMessage(b), nil
}

// waitForJob polls the job until it is final. Polling is a stopgap for the
// CLI until live updates reach it; the interval starts small so that short
// jobs answer quickly and grows to 1 s so that long ones cost little.
func waitForJob(ctx context.Context, c *client.Client, job *client.Job) (*client.Job, error) {
	interval := 20 * time.Millisecond
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for !job.State.Final() {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for job %s: %w", job.ID, ctx.Err())
		case <-timer.C:
		}
		var err error
		if job, err = c.GetJob(ctx, job.ID); err != nil {
			return nil, err
		}
		interval = min(2*interval, time.Second)
		timer.Reset(interval)
	}
	return job, nil
}

func jobsGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return jobAction(ctx, "get", "Prints the job with the given id.", args, stdout, stderr, (*client.Client).GetJob)
}

func jobsCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return jobAction(ctx, "cancel", "Cancels the job with the given id, which must not have finished, and prints it.",
		args, stdout, stderr, (*client.Client).CancelJob)
}

func jobsRetry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return jobAction(ctx, "retry", "Makes the job with the given id due to run again now and prints it.",
		args, stdout, stderr, (*client.Client).RetryJob)
}

func jobsDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return jobAction(ctx, "delete", "Deletes the job with the given id, which must not be running (cancel it first).",
		args, stdout, stderr, func(c *client.Client, ctx context.Context, id string) (*client.Job, error) {
			return nil, c.DeleteJob(ctx, id)
		})
}

// jobAction runs a subcommand that takes one job id and prints the job the
// call returns, if any.
func jobAction(ctx context.Context, verb, description string, args []string, stdout, stderr io.Writer,
	call func(*client.Client, context.Context, string) (*client.Job, error)) error {
	fs := newFlagSet("jobs "+verb+" ID [flags]", "", stderr)
	setUsage(fs, description)
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cf.usageError("want exactly one job ID, got %d arguments", len(pos))
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	job, err := call(c, ctx, pos[0])
	if err != nil {
		return cf.explain(err)
	}
	if job == nil {
		if !cf.jsonOut {
			fmt.Fprintf(stdout, "job %s deleted\n", pos[0])
		}
		return nil
	}
	return printJob(stdout, job, cf.jsonOut)
}

func jobsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("jobs list [flags]", "", stderr)
	setUsage(fs, `
Lists jobs, newest first, that match every filter given. One page is
printed; when there are more, the cursor for the next one goes to stderr
("next cursor: …"). --all follows the cursors to the end.`)
	var (
		p     client.ListJobsParams
		state string
		all   bool
	)
	fs.StringVar(&p.Queue, "queue", "", "only jobs of this queue `name`")
	fs.StringVar(&state, "state", "", "only jobs in this `state`: scheduled, available, running, retryable, succeeded, dead or cancelled")
	fs.StringVar(&p.Kind, "kind", "", "only jobs of this `kind`")
	fs.StringVar(&p.Tag, "tag", "", "only jobs carrying this `tag`")
	fs.IntVar(&p.Limit, "limit", 0, "jobs per page, 1 to 1000 (default: the server's, 100)")
	fs.StringVar(&p.Cursor, "cursor", "", "start at this `cursor`, printed by an earlier page")
	fs.BoolVar(&all, "all", false, "follow the cursors and list every matching job")
	cf := newClientFlags(fs, stdout)
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cf.usageError("unexpected arguments: %s", strings.Join(pos, " "))
	}
	p.State = client.JobState(state)
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	tw := newTable(stdout)
	if !cf.jsonOut {
		fmt.Fprintln(tw, "ID\tQUEUE\tKIND\tSTATE\tATTEMPT\tRUN_AT")
	}
	seen := map[string]bool{}
	for {
		page, err := c.ListJobs(ctx, p)
		if err != nil {
			if len(seen) > 0 {
				tw.Flush() // the pages listed before the failure
			}
			return cf.explain(err)
		}
		for i := range page.Items {
			j := &page.Items[i]
			if cf.jsonOut {
				if err := printJSON(stdout, j.Raw, j); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\n", j.ID, j.Queue, j.Kind, j.State, j.Attempt, j.MaxAttempts, compactTime(j.RunAt))
		}
		if page.NextCursor == "" {
			break
		}
		if !all {
			fmt.Fprintf(stderr, "next cursor: %s\n", page.NextCursor)
			break
		}
		if seen[page.NextCursor] {
			tw.Flush()
			return errors.New("the server repeated a cursor; stopping")
		}
		seen[page.NextCursor] = true
		p.Cursor = page.NextCursor
	}
	return tw.Flush()
}

// printJob prints one job as "key: value" lines, or its JSON.
func printJob(w io.Writer, j *client.Job, asJSON bool) error {
	if asJSON {
		return printJSON(w, j.Raw, j)
	}
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", j.ID)
	row("queue", j.Queue)
	row("kind", j.Kind)
	row("state", string(j.State))
	row("priority", fmt.Sprint(j.Priority))
	row("attempt", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
	row("run_at", fullTime(&j.RunAt))
	row("created_at", fullTime(&j.CreatedAt))
	row("started_at", fullTime(j.StartedAt))
	row("finished_at", fullTime(j.FinishedAt))
	timeout := "none"
	if j.Timeout > 0 {
		timeout = j.Timeout.String()
	}
	row("timeout", timeout)
	row("unique_key", orDash(j.UniqueKey))
	row("tags", orDash(strings.Join(j.Tags, ", ")))
	row("args", jsonText(j.Args))
	row("result", jsonText(j.Result))
	row("progress", jsonText(j.Progress))
	if len(j.Errors) == 0 {
		row("errors", "none")
	} else {
		row("errors", fmt.Sprint(len(j.Errors)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range j.Errors {
		msg := strings.ReplaceAll(strings.TrimRight(e.Message, "\n"), "\n", "\n      ")
		if _, err := fmt.Fprintf(w, "  attempt %d at %s:\n      %s\n", e.Attempt, fullTime(&e.At), msg); err != nil {
			return err
		}
	}
	return nil
}

// compactTime is a time for a table column: local, to the second.
func compactTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// fullTime is a time for the one-job view: local, to the millisecond, with
// its offset.
func fullTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02T15:04:05.000Z07:00")
}

func jsonText(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return "-"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return s
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
