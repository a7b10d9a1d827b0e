package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/switchyard-dev/switchyard/client"
)

const workersDescription = `Lists the worker nodes of a tenant (--tenant, or the credential's own) on a
Switchyard server (--server, default http://localhost:8080): the processes
running the job engine that were configured with the tenant. A server's
nodes are the default tenant's.`

func runWorkers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runGroup(ctx, "workers", workersDescription, []subcommand{
		{"list", "list worker nodes, online and offline", workersList},
	}, args, stdout, stderr)
}

func workersList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("workers list [flags]", "", stderr)
	setUsage(fs, `
Lists the tenant's worker nodes in id order, online and offline, with the
queues each was configured with ("*" when it also works every other queue,
"all tenants" when it works every tenant's) and its last heartbeat. A node
that stops gracefully leaves the list; one that died stays in it, offline,
for a day.`)
	cf := newClientFlags(fs, stdout)
	c, err := cf.parseNone(args)
	if err != nil {
		return err
	}
	defer cf.close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return cf.explain(err)
	}
	return printWorkers(stdout, ws, cf.jsonOut)
}

// printWorkers prints worker nodes as a table, or one JSON object per line.
func printWorkers(w io.Writer, ws []client.Worker, asJSON bool) error {
	if asJSON {
		for i := range ws {
			if err := printJSON(w, ws[i].Raw, &ws[i]); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tSTATE\tHOSTNAME\tPID\tQUEUES\tSTARTED\tLAST_SEEN")
	for _, wk := range ws {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", wk.ID, wk.State, orDash(wk.Hostname), wk.PID, workerQueues(&wk),
			compactTime(wk.StartedAt), compactTime(wk.LastSeenAt))
	}
	return tw.Flush()
}

// workerQueues is the QUEUES cell: the configured queues, "*" for every
// other one, and whether it works every tenant's.
func workerQueues(w *client.Worker) string {
	qs := append([]string(nil), w.Queues...)
	if w.AllQueues {
		qs = append(qs, "*")
	}
	s := strings.Join(qs, ",")
	if s == "" {
		s = "-"
	}
	if w.AllTenants {
		s += " (all tenants)"
	}
	return s
}
