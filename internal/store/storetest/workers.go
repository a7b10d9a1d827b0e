package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var workerTests = []suiteTest{
	{"RegisterList", testNodesRegisterList},
	{"Heartbeat", testNodesHeartbeat},
	{"MarkOffline", testNodesMarkOffline},
	{"MarkOfflineOnce", testNodesMarkOfflineOnce},
	{"Delete", testNodesDelete},
	{"Prune", testNodesPrune},
	{"RescueJobs", testRescueExpiredJobs},
}

// silentGap is how long the tests let a node go silent before it counts as
// offline, while another heartbeats just before the check: far longer than
// a heartbeat and a check take, however loaded the machine.
const silentGap = 300 * time.Millisecond

func node(id, tenant string) store.NodeInfo {
	return store.NodeInfo{ID: id, TenantID: tenant, Queues: []string{}, Hostname: "host-" + id, PID: 4242}
}

func (e *env) register(n store.NodeInfo) {
	e.t.Helper()
	before := e.now()
	got, err := e.s.RegisterNode(e.ctx(), n)
	after := e.now()
	if err != nil {
		e.t.Fatalf("RegisterNode(%s): %v", n.ID, err)
	}
	if got.ID != n.ID || got.TenantID != n.TenantID || got.Hostname != n.Hostname || got.Timeout != n.Timeout || got.Queues == nil {
		e.t.Errorf("RegisterNode(%+v) answered %+v", n, got)
	}
	within(e.t, "answered StartedAt", got.StartedAt, before, after)
	if !got.LastSeenAt.Equal(got.StartedAt) || !got.OfflineAt.IsZero() {
		e.t.Errorf("RegisterNode answered LastSeenAt %v, OfflineAt %v; want StartedAt, zero", got.LastSeenAt, got.OfflineAt)
	}
}

func (e *env) nodes(tenant string) []store.NodeInfo {
	e.t.Helper()
	ns, err := e.s.ListNodes(e.ctx(), tenant)
	if err != nil {
		e.t.Fatalf("ListNodes(%q): %v", tenant, err)
	}
	return ns
}

func nodeIDs(ns []store.NodeInfo) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

func findNode(t *testing.T, ns []store.NodeInfo, id string) store.NodeInfo {
	t.Helper()
	for _, n := range ns {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("node %s not in %v", id, nodeIDs(ns))
	return store.NodeInfo{}
}

func testNodesRegisterList(t *testing.T, open opener) {
	e := newEnv(t, open)
	if ns := e.nodes(""); ns == nil || len(ns) != 0 {
		t.Fatalf("ListNodes on an empty store = %#v, want an empty, non-nil list", ns)
	}
	b := node("node-b", tenantA)
	b.Queues, b.AllQueues, b.Timeout = []string{"default", "emails"}, true, 32*time.Second
	a := node("node-a", tenantB)
	a.AllTenants = true
	before := e.now()
	e.register(b)
	e.register(a)
	after := e.now()

	all := e.nodes("")
	if got := nodeIDs(all); !slices.Equal(got, []string{"node-a", "node-b"}) {
		t.Fatalf("ListNodes(\"\") = %v, want [node-a node-b] (id order)", got)
	}
	got := findNode(t, all, "node-b")
	if got.TenantID != tenantA || got.AllTenants || !got.AllQueues || !slices.Equal(got.Queues, b.Queues) ||
		got.Hostname != "host-node-b" || got.PID != 4242 || got.Timeout != b.Timeout {
		t.Errorf("node-b read back as %+v, want %+v", got, b)
	}
	within(t, "StartedAt", got.StartedAt, before, after)
	within(t, "LastSeenAt", got.LastSeenAt, before, after)
	checkZeroTime(t, "OfflineAt", got.OfflineAt)
	if got := findNode(t, all, "node-a"); !got.AllTenants || got.Queues == nil || len(got.Queues) != 0 {
		t.Errorf("node-a read back as %+v, want AllTenants and no queues (non-nil)", got)
	}
	if got := nodeIDs(e.nodes(tenantB)); !slices.Equal(got, []string{"node-a"}) {
		t.Errorf("ListNodes(%q) = %v, want [node-a]", tenantB, got)
	}
	if got := e.nodes("no-such-tenant"); len(got) != 0 {
		t.Errorf("ListNodes of a tenant without nodes = %v, want none", nodeIDs(got))
	}

	// Registering again replaces the row: a restarted node under the same id.
	b.Queues, b.PID = []string{"other"}, 7
	e.waitPast(after)
	before = e.now()
	e.register(b)
	after = e.now()
	got = findNode(t, e.nodes(""), "node-b")
	if !slices.Equal(got.Queues, []string{"other"}) || got.PID != 7 {
		t.Errorf("re-registered node-b = %+v, want queues [other], pid 7", got)
	}
	within(t, "re-registered StartedAt", got.StartedAt, before, after)
}

func testNodesHeartbeat(t *testing.T, open opener) {
	e := newEnv(t, open)
	e.register(node("n1", tenantA))
	first := findNode(t, e.nodes(""), "n1")
	e.waitPast(first.LastSeenAt)
	before := e.now()
	if err := e.s.HeartbeatNode(e.ctx(), "n1"); err != nil {
		t.Fatalf("HeartbeatNode: %v", err)
	}
	after := e.now()
	got := findNode(t, e.nodes(""), "n1")
	within(t, "LastSeenAt after a heartbeat", got.LastSeenAt, before, after)
	if !got.StartedAt.Equal(first.StartedAt) {
		t.Errorf("StartedAt moved from %v to %v on a heartbeat", first.StartedAt, got.StartedAt)
	}
	wantErrIs(t, "HeartbeatNode of an unknown node", e.s.HeartbeatNode(e.ctx(), "unknown"), store.ErrNotFound)
}

func testNodesMarkOffline(t *testing.T, open opener) {
	e := newEnv(t, open)
	if ns, err := e.s.MarkNodesOffline(e.ctx(), time.Millisecond); err != nil || len(ns) != 0 {
		t.Fatalf("MarkNodesOffline on an empty store = %v, %v; want none", nodeIDs(ns), err)
	}
	e.register(node("silent", tenantA))
	patient := node("patient", tenantA)
	patient.Timeout = time.Hour // heartbeats rarely: not offline yet
	e.register(patient)
	silent := findNode(t, e.nodes(""), "silent")
	e.waitPast(silent.LastSeenAt.Add(silentGap))
	e.register(node("alive", tenantB))

	before := e.now()
	ns, err := e.s.MarkNodesOffline(e.ctx(), silentGap)
	after := e.now()
	if err != nil {
		t.Fatalf("MarkNodesOffline: %v", err)
	}
	if got := nodeIDs(ns); !slices.Equal(got, []string{"silent"}) {
		t.Fatalf("MarkNodesOffline(%v) = %v, want [silent]", silentGap, got)
	}
	if ns[0].TenantID != tenantA || ns[0].Hostname != "host-silent" {
		t.Errorf("marked node = %+v, want the registered one", ns[0])
	}
	within(t, "returned OfflineAt", ns[0].OfflineAt, before, after)
	got := findNode(t, e.nodes(""), "silent")
	within(t, "stored OfflineAt", got.OfflineAt, before, after)
	checkZeroTime(t, "the live node's OfflineAt", findNode(t, e.nodes(""), "alive").OfflineAt)

	// Once offline, a node is not reported again, and its heartbeats are
	// refused until it registers again.
	if ns, err := e.s.MarkNodesOffline(e.ctx(), 0); err != nil || slices.Contains(nodeIDs(ns), "silent") {
		t.Errorf("second MarkNodesOffline = %v, %v; want silent not reported again", nodeIDs(ns), err)
	}
	wantErrIs(t, "HeartbeatNode of an offline node", e.s.HeartbeatNode(e.ctx(), "silent"), store.ErrNotFound)
	e.register(node("silent", tenantA))
	got = findNode(t, e.nodes(""), "silent")
	checkZeroTime(t, "OfflineAt after registering again", got.OfflineAt)
	if err := e.s.HeartbeatNode(e.ctx(), "silent"); err != nil {
		t.Errorf("HeartbeatNode after registering again: %v", err)
	}
}

// testNodesMarkOfflineOnce races two nodes' leaders (this store and a
// sibling on the same database) over many silent nodes: each is reported
// exactly once.
func testNodesMarkOfflineOnce(t *testing.T, open opener) {
	e := newEnv(t, open)
	sib := openSibling(t, e.s)
	const n = 40
	var ids []string
	for i := range n {
		id := "node-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		ids = append(ids, id)
		e.register(node(id, tenantA))
	}
	e.waitPast(e.now().Add(10 * time.Millisecond))

	var (
		mu  sync.Mutex
		got []string
		wg  sync.WaitGroup
	)
	for _, s := range []store.Store{e.s, sib, e.s, sib} {
		wg.Go(func() {
			for range 3 {
				ns, err := s.MarkNodesOffline(e.ctx(), time.Millisecond)
				if err != nil {
					t.Errorf("MarkNodesOffline: %v", err)
					return
				}
				mu.Lock()
				got = append(got, nodeIDs(ns)...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("concurrent MarkNodesOffline reported %d nodes %v, want each of the %d exactly once", len(got), got, n)
	}
}

func testNodesDelete(t *testing.T, open opener) {
	e := newEnv(t, open)
	e.register(node("online", tenantA))
	e.register(node("gone", tenantA))
	gone := findNode(t, e.nodes(""), "gone")
	e.waitPast(gone.LastSeenAt.Add(silentGap))
	if err := e.s.HeartbeatNode(e.ctx(), "online"); err != nil {
		t.Fatalf("HeartbeatNode: %v", err)
	}
	if ns, err := e.s.MarkNodesOffline(e.ctx(), silentGap); err != nil || !slices.Equal(nodeIDs(ns), []string{"gone"}) {
		t.Fatalf("MarkNodesOffline = %v, %v; want [gone]", nodeIDs(ns), err)
	}

	n, err := e.s.DeleteNode(e.ctx(), "online")
	if err != nil {
		t.Fatalf("DeleteNode(online): %v", err)
	}
	if n.ID != "online" || n.Hostname != "host-online" || !n.OfflineAt.IsZero() {
		t.Errorf("DeleteNode(online) = %+v, want the online node as it was", n)
	}
	n, err = e.s.DeleteNode(e.ctx(), "gone")
	if err != nil {
		t.Fatalf("DeleteNode(gone): %v", err)
	}
	if n.OfflineAt.IsZero() {
		t.Errorf("DeleteNode(gone) = %+v, want it offline (OfflineAt set)", n)
	}
	if ns := e.nodes(""); len(ns) != 0 {
		t.Errorf("nodes left after deleting both: %v", nodeIDs(ns))
	}
	_, err = e.s.DeleteNode(e.ctx(), "online")
	wantErrIs(t, "DeleteNode of a deleted node", err, store.ErrNotFound)
}

func testNodesPrune(t *testing.T, open opener) {
	e := newEnv(t, open)
	e.register(node("old", tenantA))
	e.register(node("live", tenantA))
	old := findNode(t, e.nodes(""), "old")
	e.waitPast(old.LastSeenAt.Add(silentGap))
	if err := e.s.HeartbeatNode(e.ctx(), "live"); err != nil {
		t.Fatalf("HeartbeatNode: %v", err)
	}
	ns, err := e.s.MarkNodesOffline(e.ctx(), silentGap)
	if err != nil || len(ns) != 1 {
		t.Fatalf("MarkNodesOffline = %v, %v; want [old]", nodeIDs(ns), err)
	}
	if n, err := e.s.PruneNodes(e.ctx(), time.Hour); err != nil || n != 0 {
		t.Errorf("PruneNodes(1h) = %d, %v; want 0: old went offline just now", n, err)
	}
	e.waitPast(ns[0].OfflineAt.Add(10 * time.Millisecond))
	if n, err := e.s.PruneNodes(e.ctx(), 10*time.Millisecond); err != nil || n != 1 {
		t.Errorf("PruneNodes(10ms) = %d, %v; want 1", n, err)
	}
	if got := nodeIDs(e.nodes("")); !slices.Equal(got, []string{"live"}) {
		t.Errorf("nodes after pruning = %v, want [live]: online nodes are never pruned", got)
	}
}

func testRescueExpiredJobs(t *testing.T, open opener) {
	e := newEnv(t, open)
	retry := params(tenantA, "q", "has attempts left")
	retry.MaxAttempts = 3
	last := params(tenantB, "r", "on its last attempt")
	last.MaxAttempts = 1
	r, lr := e.expireLease(e.insertJob(retry))
	d, _ := e.expireLease(e.insertJob(last))
	alive, _ := e.leaseJob(e.insertJob(params(tenantA, "long", "still leased")), time.Hour)

	before := e.now()
	js, next, err := e.s.RescueExpiredJobs(e.ctx(), 100, func(j *store.Job) time.Duration { return 30 * time.Minute })
	after := e.now()
	if err != nil {
		t.Fatalf("RescueExpiredJobs: %v", err)
	}
	durationWithin(t, "next", next, alive.LeaseExpiresAt.Sub(after), alive.LeaseExpiresAt.Sub(before))
	slices.SortFunc(js, byID)
	if got := ids(js); !slices.Equal(got, []int64{r.ID, d.ID}) {
		t.Fatalf("RescueExpiredJobs moved %v, want [%d %d]", got, r.ID, d.ID)
	}
	for _, j := range js {
		stored := e.get(j.TenantID, j.ID)
		if j.State != stored.State || j.Attempt != stored.Attempt || j.MaxAttempts != stored.MaxAttempts ||
			j.Queue != stored.Queue || j.Kind != stored.Kind || j.TenantID != stored.TenantID {
			t.Errorf("answered job %+v, stored %+v: state, attempts and identity must match", j, stored)
		}
		if j.State == store.StateRetryable {
			within(t, "answered RunAt", j.RunAt, stored.RunAt, stored.RunAt)
		}
		if j.LeaseToken != 0 {
			t.Errorf("answered job %d keeps lease token %d", j.ID, j.LeaseToken)
		}
	}
	if js[0].State != store.StateRetryable || js[1].State != store.StateDead {
		t.Errorf("states = %s, %s; want retryable, dead", js[0].State, js[1].State)
	}
	if err := e.complete(store.Completion{Lease: lr, Outcome: store.OutcomeSucceeded})[0]; !errors.Is(err, store.ErrStaleLease) {
		t.Errorf("Complete with the rescued lease: %v, want ErrStaleLease", err)
	}
	if js, _, err := e.s.RescueExpiredJobs(e.ctx(), 100, func(*store.Job) time.Duration { return time.Minute }); err != nil || len(js) != 0 {
		t.Errorf("second RescueExpiredJobs = %v, %v; want nothing", ids(js), err)
	}
}
