package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestWorkersCommands(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		s := startCLIServer(t, db)
		ws, err := s.srv.Client.Workers(t.Context())
		if err != nil || len(ws) != 1 {
			t.Fatalf("the server's workers: %+v, %v; want its node", ws, err)
		}
		node := ws[0]

		// The server's node works every queue of every tenant.
		out := s.ok(t, "workers", "list")
		rows := table(out)
		if len(rows) != 2 || strings.Join(rows[0], " ") != "ID STATE HOSTNAME PID QUEUES STARTED LAST_SEEN" {
			t.Fatalf("workers list:\n%s", out)
		}
		// ID STATE HOSTNAME PID QUEUES…: the queues cell is "* (all tenants)".
		if r := rows[1]; len(r) < 7 || r[0] != node.ID || r[1] != "online" || r[2] != node.Hostname ||
			r[3] != strconv.Itoa(node.PID) || r[4] != "*" || r[5] != "(all" || r[6] != "tenants)" {
			t.Fatalf("workers list:\n%s", out)
		}
		w := one(t, s.okJSON(t, "workers", "list"))
		if w["id"] != node.ID || w["state"] != "online" || w["all_queues"] != true || w["all_tenants"] != true ||
			w["offline_at"] != nil || w["last_seen_at"] == nil {
			t.Fatalf("workers list --json: %v", w)
		}

		// A tenant no node was configured with has none.
		s.ok(t, "tenants", "create", "acme")
		if rows := table(s.ok(t, "workers", "list", "--tenant", "acme")); len(rows) != 1 || rows[0][0] != "ID" {
			t.Fatalf("acme's workers: %q", rows)
		}
		if objs := s.okJSON(t, "workers", "list", "--tenant", "acme"); len(objs) != 0 {
			t.Fatalf("acme's workers --json: %v", objs)
		}
		s.fails(t, "(not_found, request ", "workers", "list", "--tenant", "nope")

		// Usage.
		if _, errOut, code := s.run(t, "workers", "list", "extra"); code != 2 || !strings.Contains(errOut, "unexpected arguments: extra") {
			t.Fatalf("workers list extra: exit %d, %q", code, errOut)
		}
		if _, errOut, code := s.run(t, "workers", "frob"); code != 2 || !strings.Contains(errOut, `unknown subcommand "frob"`) {
			t.Fatalf("workers frob: exit %d, %q", code, errOut)
		}
		for _, args := range [][]string{{"workers", "--help"}, {"workers", "list", "--help"}} {
			out, _, code := runCLI(t, args...)
			if code != 0 || !strings.Contains(out, "Usage: switchyard workers") || !strings.Contains(out, "list") {
				t.Fatalf("%v: exit %d, %q", args, code, out)
			}
		}
		if out, _, code := runCLI(t, "--help"); code != 0 || !strings.Contains(out, "  workers ") {
			t.Fatalf("--help lacks workers: %q", out)
		}
	})
}
