package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestEventsAndRulesCommands(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		s := startCLIServer(t, db)
		dir := t.TempDir()
		file := filepath.Join(dir, "rule.json")
		write := func(body string) {
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}

		// Rules.
		write(`{"name":"thumbs","types":["image.*"],"filter":"data.size > 1000",
			"actions":[{"type":"enqueue","queue":"img","kind":"noop","args":"{\"url\": data.url}","delay":"1h"}]}`)
		r := one(t, s.okJSON(t, "rules", "create", "--file", file))
		id, _ := r["id"].(string)
		if id == "" || r["enabled"] != true || r["name"] != "thumbs" {
			t.Fatalf("rules create: %v", r)
		}
		s.fails(t, "(conflict, request ", "rules", "create", "--file", file)
		write(`{"name":"bad","types":["x"],"filter":"data.size >","actions":[{"type":"publish","topic":"t"}]}`)
		s.fails(t, "filter", "rules", "create", "--file", file)
		write(`{"name":"bad","when":"always"}`)
		s.fails(t, "when", "rules", "create", "--file", file)
		if _, errOut, code := s.run(t, "rules", "create"); code != 2 || !strings.Contains(errOut, "--file is required") {
			t.Fatalf("rules create without --file: exit %d, %q", code, errOut)
		}
		out := s.ok(t, "rules", "list")
		rows := table(out)
		if len(rows) != 2 || strings.Join(rows[0], " ") != "ID NAME ENABLED TYPES ACTIONS UPDATED" || rows[1][0] != id || rows[1][2] != "yes" {
			t.Fatalf("rules list:\n%s", out)
		}
		if out := s.ok(t, "rules", "get", id); !strings.Contains(out, "data.size > 1000") || !strings.Contains(out, "enqueue noop→img") {
			t.Fatalf("rules get:\n%s", out)
		}

		// Events.
		out = s.ok(t, "events", "send", "--type", "image.uploaded", "--source", "/uploads", "--id", "e1",
			"--subject", "a/1", "--data", `{"url":"https://cdn.test/a.png","size":2048}`)
		if !strings.Contains(out, "rule thumbs:") || !strings.Contains(out, "matched: job ") {
			t.Fatalf("events send:\n%s", out)
		}
		out = s.ok(t, "events", "send", "--type", "image.uploaded", "--source", "/uploads", "--id", "e1",
			"--data", `{"url":"https://cdn.test/a.png","size":2048}`)
		if !strings.HasPrefix(out, "repeat: ") {
			t.Fatalf("repeated events send:\n%s", out)
		}
		dataFile := filepath.Join(dir, "data.json")
		if err := os.WriteFile(dataFile, []byte(`{"size":1}`), 0o600); err != nil {
			t.Fatal(err)
		}
		e := one(t, s.okJSON(t, "events", "send", "--type", "image.uploaded", "--source", "/uploads", "--data-file", dataFile))
		evID, _ := e["id"].(string)
		if ce, _ := e["event"].(map[string]any); ce["id"] == "" || ce["id"] == nil {
			t.Fatalf("events send --json without --id: %v", e)
		}
		if _, errOut, code := s.run(t, "events", "send", "--type", "x"); code != 2 || !strings.Contains(errOut, "--type and --source are required") {
			t.Fatalf("events send without --source: exit %d, %q", code, errOut)
		}
		if _, errOut, code := s.run(t, "events", "send", "--type", "x", "--source", "/s", "--data", "{nope"); code != 2 || !strings.Contains(errOut, "must be JSON") {
			t.Fatalf("events send bad data: exit %d, %q", code, errOut)
		}

		out = s.ok(t, "events", "list")
		rows = table(out)
		if len(rows) != 3 || rows[0][0] != "ID" || rows[1][0] != evID || rows[2][3] != "e1" || rows[2][8] != "1" { // RECEIVED is two fields
			t.Fatalf("events list:\n%s", out)
		}
		if objs := s.okJSON(t, "events", "list", "--type", "nope"); len(objs) != 0 {
			t.Fatalf("events list --type nope: %v", objs)
		}
		if out := s.ok(t, "events", "get", evID); !strings.Contains(out, "filter false") {
			t.Fatalf("events get:\n%s", out)
		}
		s.fails(t, "(not_found, request ", "events", "get", "999999")

		// Replace and delete.
		write(`{"name":"thumbs2","types":["image.*"],"enabled":false,"actions":[{"type":"publish","topic":"images"}]}`)
		if r := one(t, s.okJSON(t, "rules", "replace", id, "--file", file)); r["enabled"] != false || r["name"] != "thumbs2" {
			t.Fatalf("rules replace: %v", r)
		}
		if out := s.ok(t, "rules", "delete", id); !strings.Contains(out, "rule "+id+" deleted") {
			t.Fatalf("rules delete: %q", out)
		}
		s.fails(t, "(not_found, request ", "rules", "get", id)

		for _, args := range [][]string{{"events", "--help"}, {"events", "send", "--help"}, {"rules", "--help"}, {"rules", "create", "--help"}} {
			out, _, code := runCLI(t, args...)
			if code != 0 || !strings.Contains(out, "Usage: switchyard "+args[0]) {
				t.Fatalf("%v: exit %d, %q", args, code, out)
			}
		}
		if out, _, code := runCLI(t, "--help"); code != 0 || !strings.Contains(out, "  events ") || !strings.Contains(out, "  rules ") {
			t.Fatalf("--help lacks events or rules: %q", out)
		}
	})
}
