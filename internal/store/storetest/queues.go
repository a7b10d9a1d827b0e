package storetest

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var queueTests = []suiteTest{
	{"Counts", testQueueCounts},
	{"Paused", testQueuePaused},
	{"Concurrency", testQueueConcurrency},
	{"Names", testQueueNames},
	{"AllNames", testAllQueueNames},
}

func testQueueCounts(t *testing.T, open opener) {
	e := newEnv(t, open)
	// "all": one job in each state. "one": one available job. "idle": only a
	// settings row. "done": only a finished job. Tenant B has its own "all"
	// whose jobs must not be counted for tenant A.
	for _, state := range store.AllStates {
		e.inState(params(tenantA, "all", state), state)
	}
	e.insertJob(params(tenantA, "one", "k"))
	e.setPaused(tenantA, "idle", true)
	e.inState(params(tenantA, "done", "k"), store.StateSucceeded)
	for _, state := range []string{store.StateAvailable, store.StateAvailable, store.StateRunning} {
		e.inState(params(tenantB, "all", state), state)
	}

	counts := func(kv ...any) map[string]int64 {
		m := map[string]int64{}
		for _, s := range store.AllStates {
			m[s] = 0
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = int64(kv[i+1].(int))
		}
		return m
	}
	allOne := counts()
	for _, s := range store.AllStates {
		allOne[s] = 1
	}
	want := map[string]map[string]store.Queue{
		tenantA: {
			"all":  {Counts: allOne},
			"one":  {Counts: counts(store.StateAvailable, 1)},
			"idle": {Paused: true, Counts: counts()},
			"done": {Counts: counts(store.StateSucceeded, 1)},
		},
		tenantB: {
			"all": {Counts: counts(store.StateAvailable, 2, store.StateRunning, 1)},
		},
		"no-such-tenant": {},
	}
	for tenant, wq := range want {
		got := e.queues(tenant)
		if len(got) != len(wq) {
			names := []string{}
			for n := range got {
				names = append(names, n)
			}
			t.Errorf("Queues(%q) = %q, want %d queues", tenant, names, len(wq))
		}
		for name, w := range wq {
			g, ok := got[name]
			if !ok {
				t.Errorf("Queues(%q) lacks queue %q", tenant, name)
				continue
			}
			if g.TenantID != tenant || g.Paused != w.Paused {
				t.Errorf("queue %s/%s: tenant %q paused %v, want %q paused %v", tenant, name, g.TenantID, g.Paused, tenant, w.Paused)
			}
			for _, s := range store.AllStates {
				if c, ok := g.Counts[s]; !ok {
					t.Errorf("queue %s/%s: Counts has no %q key; every state must be present", tenant, name, s)
				} else if c != w.Counts[s] {
					t.Errorf("queue %s/%s: %d %s jobs, want %d", tenant, name, c, s, w.Counts[s])
				}
			}
			if len(g.Counts) != len(store.AllStates) {
				t.Errorf("queue %s/%s: Counts = %v, want exactly the %d states", tenant, name, g.Counts, len(store.AllStates))
			}
		}
	}
}

func testQueuePaused(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	paused := func(tenant, queue string) bool {
		t.Helper()
		qs, err := e.s.QueueSettings(e.ctx(), tenant, queue)
		if err != nil {
			t.Fatalf("QueueSettings(%q, %q): %v", tenant, queue, err)
		}
		return qs.Paused
	}
	if paused(tenantA, "q") {
		t.Errorf("a queue without a settings row is paused")
	}
	e.insertJob(params(tenantA, "q", "k"))
	prev := false
	for _, p := range []bool{true, true, false, true, false} {
		before := e.now()
		e.setPaused(tenantA, "q", p)
		after := e.now()
		if got := paused(tenantA, "q"); got != p {
			t.Errorf("QueuePaused after SetQueuePaused(%v) = %v", p, got)
		}
		q := e.queues(tenantA)["q"]
		if q.Paused != p || q.Counts[store.StateAvailable] != 1 {
			t.Errorf("Queues shows paused %v with %d available, want paused %v with 1", q.Paused, q.Counts[store.StateAvailable], p)
		}
		if p != prev {
			within(t, "UpdatedAt", q.UpdatedAt, before, after)
		}
		prev = p
	}
	// Pausing is per tenant.
	e.setPaused(tenantB, "q", true)
	if paused(tenantA, "q") {
		t.Errorf("pausing tenant B's queue paused tenant A's")
	}
	if !paused(tenantB, "q") {
		t.Errorf("tenant B's queue is not paused")
	}
	e.waitFor("queue notification for tenant B", func(n store.Notification) bool {
		return n.Kind == store.NotifyQueue && n.TenantID == tenantB && n.Queue == "q"
	})
	ns := e.barrier()
	if c := count(ns, func(n store.Notification) bool {
		return n.Kind == store.NotifyQueue && n.TenantID == tenantA && n.Queue == "q"
	}); c < 4 {
		// Four changes of state; the repeated pause may or may not notify.
		t.Errorf("got %d queue notifications for %s/q, want one per change (at least 4)", c, tenantA)
	}
}

func testQueueConcurrency(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	settings := func(tenant, queue string) store.QueueSettings {
		t.Helper()
		qs, err := e.s.QueueSettings(e.ctx(), tenant, queue)
		if err != nil {
			t.Fatalf("QueueSettings(%q, %q): %v", tenant, queue, err)
		}
		return qs
	}
	if qs := settings(tenantA, "q"); qs != (store.QueueSettings{}) {
		t.Errorf("a queue without a settings row has settings %+v", qs)
	}
	e.setPaused(tenantA, "q", true)
	for _, n := range []int{7, 250, 0} {
		if err := e.s.SetQueueConcurrency(e.ctx(), tenantA, "q", n); err != nil {
			t.Fatalf("SetQueueConcurrency(%d): %v", n, err)
		}
		// Setting one field keeps the other.
		if qs := settings(tenantA, "q"); qs != (store.QueueSettings{Paused: true, Concurrency: n}) {
			t.Errorf("after SetQueueConcurrency(%d): %+v", n, qs)
		}
		if q := e.queues(tenantA)["q"]; q.Concurrency != n || !q.Paused {
			t.Errorf("Queues shows concurrency %d paused %v, want %d paused", q.Concurrency, q.Paused, n)
		}
	}
	if err := e.s.SetQueueConcurrency(e.ctx(), tenantB, "fresh", 3); err != nil {
		t.Fatal(err)
	}
	if qs := settings(tenantB, "fresh"); qs != (store.QueueSettings{Concurrency: 3}) {
		t.Errorf("new queue's settings = %+v", qs)
	}
	if qs := settings(tenantA, "fresh"); qs != (store.QueueSettings{}) {
		t.Errorf("tenant B's setting leaked to tenant A: %+v", qs)
	}
	e.waitFor("queue notification", func(n store.Notification) bool {
		return n.Kind == store.NotifyQueue && n.TenantID == tenantB && n.Queue == "fresh"
	})
}

func testQueueNames(t *testing.T, open opener) {
	e := newEnv(t, open)
	e.insertJob(params(tenantA, "avail", "k"))
	e.inState(params(tenantA, "sched", "k"), store.StateScheduled)
	e.inState(params(tenantA, "retry", "k"), store.StateRetryable)
	e.inState(params(tenantA, "done", "k"), store.StateSucceeded)
	e.inState(params(tenantA, "busy", "k"), store.StateRunning)
	e.setPaused(tenantA, "settings-only", false)
	e.insertJob(params(tenantB, "other", "k"))

	names, err := e.s.QueueNames(e.ctx(), tenantA)
	if err != nil {
		t.Fatalf("QueueNames: %v", err)
	}
	slices.Sort(names)
	want := []string{"avail", "retry", "sched", "settings-only"}
	if !slices.Equal(names, want) {
		t.Errorf("QueueNames = %q, want %q (waiting jobs or a settings row)", names, want)
	}
}

func testAllQueueNames(t *testing.T, open opener) {
	e := newEnv(t, open)
	if qs, err := e.s.AllQueueNames(e.ctx()); err != nil || len(qs) != 0 {
		t.Fatalf("AllQueueNames of an empty store = %v, %v; want none", qs, err)
	}
	// Several available queues per tenant, and names shared between
	// tenants, so a walk over (tenant, queue) must cross tenant boundaries.
	for _, tenant := range []string{tenantA, tenantB} {
		e.insertJob(params(tenant, "avail", "k"))
		e.insertJob(params(tenant, "avail", "k"))
		e.insertJob(params(tenant, tenant+"-avail", "k"))
		e.inState(params(tenant, "done", "k"), store.StateSucceeded)
		e.inState(params(tenant, "busy", "k"), store.StateRunning)
	}
	e.inState(params(tenantA, "sched", "k"), store.StateScheduled)
	e.inState(params(tenantB, "retry", "k"), store.StateRetryable)
	e.setPaused(tenantA, "settings-only", false)
	e.setPaused(tenantB, "avail", true) // a settings row and waiting jobs: listed once

	byTenantQueue := func(a, b store.TenantQueue) int {
		return cmp.Or(strings.Compare(a.TenantID, b.TenantID), strings.Compare(a.Queue, b.Queue))
	}
	qs, err := e.s.AllQueueNames(e.ctx())
	if err != nil {
		t.Fatalf("AllQueueNames: %v", err)
	}
	slices.SortFunc(qs, byTenantQueue)
	var want []store.TenantQueue
	for tenant, names := range map[string][]string{
		tenantA: {"avail", tenantA + "-avail", "sched", "settings-only"},
		tenantB: {"avail", tenantB + "-avail", "retry"},
	} {
		for _, name := range names {
			want = append(want, store.TenantQueue{TenantID: tenant, Queue: name})
		}
	}
	slices.SortFunc(want, byTenantQueue)
	if !slices.Equal(qs, want) {
		t.Errorf("AllQueueNames = %v, want %v (waiting jobs or a settings row, per tenant)", qs, want)
	}
	// Each tenant's part is what QueueNames says for it.
	for _, tenant := range []string{tenantA, tenantB} {
		names, err := e.s.QueueNames(e.ctx(), tenant)
		if err != nil {
			t.Fatalf("QueueNames(%q): %v", tenant, err)
		}
		var part []string
		for _, q := range qs {
			if q.TenantID == tenant {
				part = append(part, q.Queue)
			}
		}
		slices.Sort(names)
		if !slices.Equal(part, names) {
			t.Errorf("AllQueueNames for %q = %q, QueueNames = %q", tenant, part, names)
		}
	}
}
