package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestSourcesAndEndpointsCommands(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		got := make(chan http.Header, 10)
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			got <- r.Header.Clone()
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(rcv.Close)
		s := &cliServer{t: t, srv: servertest.Start(t, db, servertest.Options{Config: switchyard.Config{
			Deliveries: switchyard.DeliveryConfig{AllowPrivateTargets: true, BackoffBase: time.Millisecond, BackoffCap: time.Millisecond},
		}})}

		// Sources.
		src := one(t, s.okJSON(t, "sources", "create", "--name", "github", "--scheme", "github", "--secret", "old", "--secret", "new"))
		srcID, _ := src["id"].(string)
		if secrets, _ := src["secrets"].([]any); srcID == "" || len(secrets) != 2 || src["path"] != "/hooks/"+srcID {
			t.Fatalf("sources create: %v", src)
		}
		out := s.ok(t, "sources", "create", "--name", "svix", "--scheme", "standard-webhooks")
		if !strings.Contains(out, "secrets[0]:") || !strings.Contains(out, "whsec_") || !strings.Contains(out, s.srv.URL+"/hooks/src_") {
			t.Fatalf("sources create:\n%s", out)
		}
		s.fails(t, "(conflict, request ", "sources", "create", "--name", "github", "--scheme", "github")
		s.fails(t, "(invalid_argument, request ", "sources", "create", "--name", "x", "--scheme", "pigeon")
		if _, errOut, code := s.run(t, "sources", "create", "--name", "x"); code != 2 || !strings.Contains(errOut, "--name and --scheme are required") {
			t.Fatalf("sources create without --scheme: exit %d, %q", code, errOut)
		}
		rows := table(s.ok(t, "sources", "list"))
		if len(rows) != 3 || strings.Join(rows[0], " ") != "ID NAME SCHEME SECRETS PATH UPDATED" {
			t.Fatalf("sources list: %v", rows)
		}
		for _, r := range rows[1:] {
			if r[0] == srcID && (r[1] != "github" || r[3] != "2" || r[4] != "/hooks/"+srcID) {
				t.Fatalf("sources list: %v", rows)
			}
		}
		if out := s.ok(t, "sources", "get", srcID); !strings.Contains(out, "secrets[1]:") || !strings.Contains(out, "new") {
			t.Fatalf("sources get:\n%s", out)
		}

		// A webhook to the source makes an event.
		body := `{"ref":"refs/heads/main"}`
		mac := hmac.New(sha256.New, []byte("new"))
		mac.Write([]byte(body))
		req, _ := http.NewRequest("POST", s.srv.URL+"/hooks/"+srcID, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", "d1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("webhook: %d", resp.StatusCode)
		}
		ev := one(t, s.okJSON(t, "events", "list", "--type", "github.push"))
		evID, _ := ev["id"].(string)

		// Endpoints.
		ep := one(t, s.okJSON(t, "endpoints", "create", "--name", "ci", "--url", rcv.URL+"/in", "--type", "github.*", "--type", "ci.*", "--header", "X-Team=ci"))
		epID, _ := ep["id"].(string)
		if types, _ := ep["types"].([]any); epID == "" || len(types) != 2 {
			t.Fatalf("endpoints create: %v", ep)
		}
		s.fails(t, "(invalid_argument, request ", "endpoints", "create", "--name", "bad", "--url", "ftp://example.com/")
		if _, errOut, code := s.run(t, "endpoints", "create", "--name", "x", "--url", "https://example.com", "--header", "nope"); code != 2 || !strings.Contains(errOut, "NAME=VALUE") {
			t.Fatalf("endpoints create --header nope: exit %d, %q", code, errOut)
		}
		rows = table(s.ok(t, "endpoints", "list"))
		if len(rows) != 2 || strings.Join(rows[0], " ") != "ID NAME ENABLED TYPES URL UPDATED" || rows[1][0] != epID || rows[1][2] != "yes" || rows[1][3] != "github.*,ci.*" {
			t.Fatalf("endpoints list: %v", rows)
		}
		if out := s.ok(t, "endpoints", "get", epID); !strings.Contains(out, "secrets[0]:") || !strings.Contains(out, `{"X-Team":"ci"}`) {
			t.Fatalf("endpoints get:\n%s", out)
		}
		if out := s.ok(t, "endpoints", "redeliver", epID, "--event", evID); !strings.HasPrefix(out, "delivery job ") {
			t.Fatalf("endpoints redeliver: %q", out)
		}
		select {
		case h := <-got:
			if h.Get("webhook-signature") == "" || h.Get("X-Team") != "ci" {
				t.Fatalf("delivery headers %v", h)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no delivery")
		}
		testdb.Poll(t, 10*time.Second, "an attempt", func() bool {
			return len(table(s.ok(t, "endpoints", "attempts", epID, "--event", evID))) == 2
		})
		rows = table(s.ok(t, "endpoints", "attempts", epID))
		if strings.Join(rows[0], " ") != "AT EVENT JOB ATTEMPT STATUS LATENCY ERROR" || rows[1][2] != evID || rows[1][5] != "204" { // AT is two fields
			t.Fatalf("endpoints attempts: %v", rows)
		}
		if _, errOut, code := s.run(t, "endpoints", "redeliver", epID); code != 2 || !strings.Contains(errOut, "--event is required") {
			t.Fatalf("endpoints redeliver without --event: exit %d, %q", code, errOut)
		}
		rotated := one(t, s.okJSON(t, "endpoints", "rotate-secret", epID))
		if secrets, _ := rotated["secrets"].([]any); len(secrets) != 2 {
			t.Fatalf("endpoints rotate-secret: %v", rotated)
		}
		if out := s.ok(t, "endpoints", "delete", epID); !strings.Contains(out, "endpoint "+epID+" deleted") {
			t.Fatalf("endpoints delete: %q", out)
		}
		s.fails(t, "(not_found, request ", "endpoints", "get", epID)
		if out := s.ok(t, "sources", "delete", srcID); !strings.Contains(out, "source "+srcID+" deleted") {
			t.Fatalf("sources delete: %q", out)
		}
		s.fails(t, "(not_found, request ", "sources", "get", srcID)

		for _, args := range [][]string{{"sources", "--help"}, {"sources", "create", "--help"}, {"endpoints", "--help"}, {"endpoints", "attempts", "--help"}} {
			out, _, code := runCLI(t, args...)
			if code != 0 || !strings.Contains(out, "Usage: switchyard "+args[0]) {
				t.Fatalf("%v: exit %d, %q", args, code, out)
			}
		}
		if out, _, code := runCLI(t, "--help"); code != 0 || !strings.Contains(out, "  sources ") || !strings.Contains(out, "  endpoints ") {
			t.Fatalf("--help lacks sources or endpoints: %q", out)
		}
	})
}
