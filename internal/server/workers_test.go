package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server/servertest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// workerPage is the answer of GET /v1/workers.
type workerPage struct {
	Items      []switchyard.Worker `json:"items"`
	NextCursor *string             `json:"next_cursor"`
}

// startNode starts a second node on db, configured with tenant and the
// named queues, as a program using the Go package would be. It registers
// when it starts; stopping it (the returned func, or the test's end)
// removes it from the registry.
func startNode(t *testing.T, db, tenant, id string, queues ...string) (stop func()) {
	t.Helper()
	qs := map[string]switchyard.QueueConfig{}
	for _, q := range queues {
		qs[q] = switchyard.QueueConfig{}
	}
	ctx := context.Background()
	c, err := switchyard.Open(ctx, switchyard.Config{
		Database:      db,
		TenantID:      tenant,
		NodeID:        id,
		Queues:        qs,
		NoMaintenance: true, // the server's node leads
		WorkerTimeout: time.Minute,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("open node %s: %v", id, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close node %s: %v", id, err)
		}
	})
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start node %s: %v", id, err)
	}
	return func() {
		t.Helper()
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := c.Stop(stopCtx); err != nil {
			t.Fatalf("stop node %s: %v", id, err)
		}
	}
}

// The server's own node is listed in the default tenant, a node configured
// with another tenant only there; a node that stops leaves the list.
func TestWorkersOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		// A generous timeout: a loaded test machine must not make the
		// server's node look dead.
		srv := servertest.Start(t, db, servertest.Options{Config: switchyard.Config{NodeID: "http-node", WorkerTimeout: time.Minute}})
		admin := &apiClient{t, srv.URL, srv.AdminKey}
		host, _ := os.Hostname()

		// The server's node registered when it started.
		var p workerPage
		admin.want(200, "GET", "/v1/workers", "").decode(t, &p)
		if len(p.Items) != 1 || p.NextCursor != nil {
			t.Fatalf("workers = %+v, want the server's node alone on one page", p)
		}
		w := p.Items[0]
		if w.ID != "http-node" || w.State != switchyard.WorkerOnline || w.Hostname != host || w.PID != os.Getpid() ||
			!w.AllQueues || !w.AllTenants || w.Queues == nil || len(w.Queues) != 0 ||
			w.StartedAt.IsZero() || w.LastSeenAt.Before(w.StartedAt) || w.OfflineAt != nil {
			t.Fatalf("server's node = %+v", w)
		}
		// The same as the Go package's view.
		direct, err := srv.Client.Workers(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(direct) != 1 || direct[0].ID != w.ID || direct[0].PID != w.PID {
			t.Fatalf("Client.Workers = %+v, the API %+v", direct, p.Items)
		}

		// Another tenant has no workers of its own yet: an empty list,
		// not the server's node.
		admin.want(201, "POST", "/v1/tenants", `{"id":"acme"}`)
		r := admin.do("GET", "/v1/workers", "", "Switchyard-Tenant", "acme")
		var raw map[string]json.RawMessage
		if r.status != 200 {
			t.Fatalf("acme's workers: %d %s", r.status, r.body)
		}
		if r.decode(t, &raw); string(raw["items"]) != "[]" || string(raw["next_cursor"]) != "null" {
			t.Fatalf("acme's workers: %s, want an empty list", r.body)
		}

		// A node configured with acme and two queues is acme's alone.
		stopNode := startNode(t, db, "acme", "acme-node", "sms", "mail")
		var created struct{ Secret string }
		admin.do("POST", "/v1/keys", `{"name":"dashboard","role":"viewer"}`, "Switchyard-Tenant", "acme").decode(t, &created)
		viewer := &apiClient{t, srv.URL, created.Secret}
		viewer.want(200, "GET", "/v1/workers", "").decode(t, &p)
		if len(p.Items) != 1 {
			t.Fatalf("acme's workers = %+v, want acme-node alone", p.Items)
		}
		w = p.Items[0]
		if w.ID != "acme-node" || w.State != switchyard.WorkerOnline || !slices.Equal(w.Queues, []string{"mail", "sms"}) ||
			w.AllQueues || w.AllTenants || w.PID != os.Getpid() || w.OfflineAt != nil {
			t.Fatalf("acme-node = %+v", w)
		}
		admin.want(200, "GET", "/v1/workers", "").decode(t, &p)
		if len(p.Items) != 1 || p.Items[0].ID != "http-node" {
			t.Fatalf("default's workers = %+v, want http-node alone", p.Items)
		}
		// The viewer may not look at another tenant's nodes.
		if r := viewer.do("GET", "/v1/workers", "", "Switchyard-Tenant", "default"); r.status != 404 {
			t.Fatalf("viewer naming another tenant: %d %s", r.status, r.body)
		}

		// A node that stops gracefully leaves the list at once.
		stopNode()
		viewer.want(200, "GET", "/v1/workers", "").decode(t, &p)
		if len(p.Items) != 0 {
			t.Fatalf("acme's workers after its node stopped = %+v, want none", p.Items)
		}

		// The list is whole: no filters, no paging.
		for _, q := range []string{"state=online", "limit=10", "cursor=x"} {
			r := admin.do("GET", "/v1/workers?"+q, "")
			if r.status != 400 {
				t.Fatalf("GET /v1/workers?%s: %d %s, want 400", q, r.status, r.body)
			}
			if code, _ := r.errorCode(t); code != "invalid_argument" {
				t.Errorf("GET /v1/workers?%s: code %s, want invalid_argument", q, code)
			}
		}
	})
}
