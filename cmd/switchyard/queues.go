package main

import (
	"context"
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard/client"
)

const queuesDescription = `Lists, pauses, resumes and configures queues on a Switchyard server
(--server, default http://localhost:8080).`

func runQueues(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "queues", queuesDescription, []subcommand{
		{"list", "list queues with their job counts", queuesList},
		{"pause", "stop a queue's jobs from starting", queuesPause},
		{"resume", "let a paused queue's jobs start again", queuesResume},
		{"set", "change a queue's settings (--concurrency)", queuesSet},
	}, args, stdout, stderr)
}

func queuesList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("queues list [flags]", "", stderr)
	setUsage(fs, "Lists the queues with their settings and how many jobs each has in every state.")
	cf := newClientFlags(fs, stdout)
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	qs, err := c.ListQueues(ctx)
	if err != nil {
		return cf.explain(err)
	}
	return printQueues(stdout, qs, cf.jsonOut)
}

func queuesPause(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return queueAction(ctx, "pause NAME [flags]",
		"Pauses the queue: its jobs are not started until it is resumed; they can still be enqueued.",
		args, stdout, stderr, nil, (*client.Client).PauseQueue)
}

func queuesResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return queueAction(ctx, "resume NAME [flags]", "Resumes a paused queue: its jobs start again.",
		args, stdout, stderr, nil, (*client.Client).ResumeQueue)
}

func queuesSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var concurrency int
	define := func(cf *clientFlags) func() error {
		cf.fs.IntVar(&concurrency, "concurrency", 0, "how many of the queue's jobs run at once on each node, 1 to 10000")
		return func() error {
			if !given(cf.fs, "concurrency") {
				return cf.usageError("nothing to set: give --concurrency")
			}
			return nil
		}
	}
	return queueAction(ctx, "set NAME --concurrency N [flags]", "Changes the queue's settings and prints it.",
		args, stdout, stderr, define, func(c *client.Client, ctx context.Context, name string) (*client.Queue, error) {
			return c.UpdateQueue(ctx, name, client.QueueUpdate{Concurrency: &concurrency})
		})
}

// queueAction runs a subcommand that takes one queue name and prints the
// queue the call returns. define, if not nil, adds flags and returns a check
// to run once they are parsed.
func queueAction(ctx context.Context, synopsis, description string, args []string, stdout, stderr io.Writer,
	define func(*clientFlags) func() error,
	call func(*client.Client, context.Context, string) (*client.Queue, error)) error {
	fs := newFlagSet("queues "+synopsis, "", stderr)
	setUsage(fs, description)
	cf := newClientFlags(fs, stdout)
	var check func() error
	if define != nil {
		check = define(cf)
	}
	pos, err := cf.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cf.usageError("want exactly one queue NAME, got %d arguments", len(pos))
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	defer cf.close()
	q, err := call(c, ctx, pos[0])
	if err != nil {
		return cf.explain(err)
	}
	return printQueues(stdout, []client.Queue{*q}, cf.jsonOut)
}

// printQueues prints queues as a table, or one JSON object per line.
func printQueues(w io.Writer, qs []client.Queue, asJSON bool) error {
	if asJSON {
		for i := range qs {
			if err := printJSON(w, qs[i].Raw, &qs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tPAUSED\tCONCURRENCY\tAVAILABLE\tRUNNING\tSCHEDULED\tRETRYABLE\tSUCCEEDED\tDEAD\tCANCELLED")
	for _, q := range qs {
		paused := "no"
		if q.Paused {
			paused = "yes"
		}
		n := q.Counts
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", q.Name, paused, q.Concurrency,
			n.Available, n.Running, n.Scheduled, n.Retryable, n.Succeeded, n.Dead, n.Cancelled)
	}
	return tw.Flush()
}
