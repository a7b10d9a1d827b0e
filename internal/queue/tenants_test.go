package queue

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/store/sqlite"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// Notifications start producers only for the tenants a runner works: its
// own, or with AllTenants every one, each keyed by (tenant, queue). Jobs
// running end to end in several tenants is covered by the root package's
// tests on both backends.
func TestNotifyStartsProducersPerTenant(t *testing.T) {
	t.Parallel()
	notes := []store.Notification{
		{Kind: store.NotifyInsert, TenantID: "acme", Queue: "a"},
		{Kind: store.NotifyInsert, TenantID: "globex", Queue: "a"},
		{Kind: store.NotifyQueue, TenantID: "globex", Queue: "b"},
		{Kind: store.NotifyInsert, TenantID: "acme", Queue: "a"}, // known: wakes it
	}
	type producerState struct {
		key         store.TenantQueue
		concurrency int
	}
	cases := []struct {
		name string
		cfg  Config
		want []producerState
	}{
		{
			name: "named queues of one tenant",
			cfg:  Config{TenantID: "acme", Queues: map[string]QueueConfig{"a": {Concurrency: 2}}},
			want: []producerState{{store.TenantQueue{TenantID: "acme", Queue: "a"}, 2}},
		},
		{
			name: "all queues of one tenant",
			cfg:  Config{TenantID: "acme", AllQueues: true, DefaultConcurrency: 5},
			want: []producerState{{store.TenantQueue{TenantID: "acme", Queue: "a"}, 5}},
		},
		{
			name: "all tenants",
			cfg: Config{TenantID: "acme", AllTenants: true, DefaultConcurrency: 5,
				Queues: map[string]QueueConfig{"b": {Concurrency: 3}}},
			want: []producerState{
				{store.TenantQueue{TenantID: "acme", Queue: "a"}, 5},
				{store.TenantQueue{TenantID: "globex", Queue: "a"}, 5},
				{store.TenantQueue{TenantID: "globex", Queue: "b"}, 3},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, err := sqlite.Open(ctx, sqlite.Config{Path: testdb.SQLitePath(t), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			cfg := tc.cfg
			cfg.Store = st
			cfg.NodeID = "node"
			cfg.Logger = slog.New(slog.DiscardHandler)
			cfg.Maintenance.Disabled = true
			r, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			for _, n := range notes {
				r.Notify(n) // adding a producer is synchronous
			}
			var got []producerState
			for key, p := range *r.producers.Load() {
				if p.tenant != key.TenantID || p.queue != key.Queue {
					t.Errorf("producer of %v works %s/%s", key, p.tenant, p.queue)
				}
				got = append(got, producerState{key, p.base})
			}
			order := func(a, b producerState) int {
				return cmp.Or(strings.Compare(a.key.TenantID, b.key.TenantID), strings.Compare(a.key.Queue, b.key.Queue))
			}
			slices.SortFunc(got, order)
			slices.SortFunc(tc.want, order)
			if !slices.Equal(got, tc.want) {
				t.Errorf("producers = %v, want %v", got, tc.want)
			}
			stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := r.Stop(stopCtx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
