package switchyard_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// tenantArgs carries its tenant so the handler can say whose job it ran.
type tenantArgs struct {
	Tenant string `json:"tenant"`
	N      int    `json:"n"`
}

func (tenantArgs) Kind() string { return "test.tenant" }

// A client with AllTenants works the queues of every tenant: those with jobs
// when it starts, and those whose first job arrives later, including a queue
// name no tenant used before.
func TestAllTenantsWorksEveryTenantsQueues(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		tenantClient := func(tenant string) *switchyard.Client {
			cfg := testConfig(db)
			cfg.TenantID = tenant
			cfg.ExternalKinds = []string{tenantArgs{}.Kind()}
			return open(t, cfg)
		}
		clients := map[string]*switchyard.Client{"acme": tenantClient("acme"), "globex": tenantClient("globex")}

		cfg := testConfig(db)
		cfg.AllTenants = true
		server := open(t, cfg)
		ran := make(chan string, 64)
		switchyard.Handle(server, func(ctx context.Context, j *switchyard.Job[tenantArgs]) error {
			ran <- fmt.Sprintf("%s/%s/%d", j.Args.Tenant, j.Queue, j.Args.N)
			return nil
		})

		want := map[string]bool{}
		ids := map[string][]string{} // job ids by tenant
		n := 0
		enqueueIn := func(tenant, queue string) {
			t.Helper()
			n++
			job := enqueue(t, clients[tenant], tenantArgs{Tenant: tenant, N: n}, &switchyard.EnqueueOpts{Queue: queue})
			want[fmt.Sprintf("%s/%s/%d", tenant, queue, n)] = true
			ids[tenant] = append(ids[tenant], job.ID)
		}
		// Found when the server starts.
		enqueueIn("acme", "default")
		enqueueIn("acme", "reports")
		enqueueIn("globex", "default")
		enqueueIn("globex", "billing")
		start(t, server)
		// Started by their first insert notification: a queue the server
		// already works, one another tenant has, and a name never seen.
		enqueueIn("acme", "reports")
		enqueueIn("globex", "reports")
		enqueueIn("acme", "fresh")
		enqueueIn("globex", "fresh")

		got := map[string]bool{}
		for range want {
			key := wait(t, ran, "a tenant's job")
			if got[key] {
				t.Fatalf("job %s ran twice", key)
			}
			got[key] = true
		}
		if !maps.Equal(got, want) {
			t.Fatalf("ran %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		stop(t, server)
		for tenant, tenantIDs := range ids {
			for _, id := range tenantIDs {
				if j := getJob(t, clients[tenant], id); j.State != switchyard.StateSucceeded || j.Attempt != 1 {
					t.Errorf("%s job %s: state %s attempt %d", tenant, id, j.State, j.Attempt)
				}
			}
		}
	})
}
