package postgres

import (
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// TestDeadLeaderSessionHandsOverAtOnce: when the leader's session
// connection ends (its process died), a follower hears NotifyLeader and may
// take the lead although the leader's lease has an hour left.
func TestDeadLeaderSessionHandsOverAtOnce(t *testing.T) {
	checkLeaks(t)
	url := testdb.PostgresURL(t)
	a, recA := openListening(t, url)
	b, recB := openListening(t, url)
	ctx := t.Context()

	// a leads once its session holds the lock (its pid is then recorded).
	if ok, err := a.TryLead(ctx, "maint", "node-a", time.Hour); err != nil || !ok {
		t.Fatalf("a: TryLead = %v, %v", ok, err)
	}
	se := a.sessionFor("maint")
	// The session announces the lock it took with a local NotifyLeader.
	recA.waitFor(t, "a's session lock", isKind(store.NotifyLeader))
	if _, holding := se.state(); !holding {
		t.Fatal("a's session announced the lock without holding it")
	}
	if ok, err := a.TryLead(ctx, "maint", "node-a", time.Hour); err != nil || !ok {
		t.Fatalf("a: renew = %v, %v", ok, err)
	}
	if ok, err := b.TryLead(ctx, "maint", "node-b", time.Hour); err != nil || ok {
		t.Fatalf("b: TryLead while a lives = %v, %v", ok, err)
	}

	// a's process "dies": PostgreSQL ends its session connection.
	pid, _ := se.state()
	leaderNotes := count(recB.all(), isKind(store.NotifyLeader))
	if _, err := b.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", int32(pid)); err != nil {
		t.Fatal(err)
	}
	leaderNotes++
	recB.waitCount(t, "b's NotifyLeader", isKind(store.NotifyLeader), leaderNotes)
	// a's session reconnects and waits behind b's now; b takes the lead.
	ok := false
	for range 50 {
		var err error
		if ok, err = b.TryLead(ctx, "maint", "node-b", time.Hour); err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		// The dead backend may linger in pg_stat_activity for a moment
		// after releasing its lock; b's session hears of each change.
		leaderNotes++
		recB.waitCount(t, "another NotifyLeader", isKind(store.NotifyLeader), leaderNotes)
	}
	if !ok {
		t.Fatal("b could not take the lead from a dead session")
	}
	if ok, err := a.TryLead(ctx, "maint", "node-a", time.Hour); err != nil || ok {
		t.Fatalf("a took the lead back: %v, %v", ok, err)
	}
}
