package sqlite

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// blockWriter starts an op that holds the writer until release is closed,
// and returns once the writer runs it, so that the ops submitted meanwhile
// queue up. The op's own error is sent on the returned channel.
func blockWriter(t *testing.T, s *Store) (release chan struct{}, done chan error) {
	t.Helper()
	release, done = make(chan struct{}), make(chan error, 1)
	running := make(chan struct{})
	go func() {
		done <- s.w.do(context.Background(), true, func(*wtx) error {
			close(running)
			<-release
			return nil
		})
	}()
	<-running
	return release, done
}

// Ops submitted while the writer is busy all go into its next commit.
func TestGroupCommitBatchesWaitingOps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		rec := listen(s)
		release, blocked := blockWriter(t, s)
		before := s.w.commits.Load()

		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		res := make([][]store.InsertResult, n)
		for i := range n {
			wg.Go(func() {
				// Jobs of one to three rows: the writer inserts them
				// together; each caller must still get its own ids.
				ps := make([]store.InsertParams, 1+i%3)
				for k := range ps {
					ps[k] = job("q", "k")
					ps[k].Args = []byte(`{"op":` + strconv.Itoa(i) + `,"row":` + strconv.Itoa(k) + `}`)
				}
				res[i], errs[i] = s.Insert(context.Background(), ps)
			})
		}
		synctest.Wait() // every Insert is now waiting for the writer
		close(release)
		wg.Wait()
		if err := <-blocked; err != nil {
			t.Fatal(err)
		}
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		seen := map[int64]bool{}
		for i, rs := range res {
			for k, r := range rs {
				got, err := s.Get(context.Background(), "default", r.Job.ID)
				want := `{"op":` + strconv.Itoa(i) + `,"row":` + strconv.Itoa(k) + `}`
				if err != nil || string(got.Args) != want || seen[r.Job.ID] {
					t.Fatalf("op %d row %d got id %d holding %s (%v), want %s", i, k, r.Job.ID, got.Args, err, want)
				}
				seen[r.Job.ID] = true
			}
		}
		// One commit for the blocking op, one for all twenty inserts.
		if got := s.w.commits.Load() - before; got != 2 {
			t.Errorf("%d commits, want 2", got)
		}
		// Twenty inserts into one queue in one commit: one notification.
		if ns := rec.take(); len(ns) != 1 || ns[0].Kind != store.NotifyInsert {
			t.Errorf("notifications %+v, want one insert", ns)
		}
	})
}

// A batch carries at most MaxBatch ops.
func TestGroupCommitMaxBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t, Config{MaxBatch: 2})
		release, blocked := blockWriter(t, s)
		before := s.w.commits.Load()
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if _, err := s.Insert(context.Background(), []store.InsertParams{job("q", "k")}); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		<-blocked
		// The blocking op's commit, then 5 ops in batches of 2, 2 and 1.
		if got := s.w.commits.Load() - before; got != 4 {
			t.Errorf("%d commits, want 4", got)
		}
	})
}

// One op's error rolls back only that op; the others in its batch commit.
// The failing op is two rows (one statement, run without a savepoint: SQLite
// undoes the statement) or three rows (two statements, so a savepoint must
// undo the first).
func TestGroupCommitIsolatesFailingOp(t *testing.T) {
	for _, rows := range []int{2, 3} {
		t.Run(strconv.Itoa(rows)+" rows", func(t *testing.T) { testIsolatesFailingOp(t, rows) })
	}
}

func testIsolatesFailingOp(t *testing.T, rows int) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		rec := listen(s)
		release, blocked := blockWriter(t, s)
		before := s.w.commits.Load()

		bad := job("bad", "k")
		bad.Priority = 9 // violates the CHECK constraint
		failing := []store.InsertParams{job("b", "k")}
		if rows == 3 {
			failing = append(failing, job("b", "k"))
		}
		failing = append(failing, bad)
		ps := [][]store.InsertParams{{job("a", "k")}, failing, {job("c", "k")}}
		errs := make([]error, len(ps))
		var wg sync.WaitGroup
		for i, p := range ps {
			wg.Go(func() { _, errs[i] = s.Insert(context.Background(), p) })
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		<-blocked
		if errs[0] != nil || errs[2] != nil || errs[1] == nil {
			t.Fatalf("errors %v, want only the second to fail", errs)
		}
		if got := s.w.commits.Load() - before; got != 2 {
			t.Errorf("%d commits, want 2", got)
		}
		qs, err := s.Queues(context.Background(), "default")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, q := range qs {
			names = append(names, q.Name)
		}
		if len(names) != 2 || names[0] != "a" || names[1] != "c" {
			t.Errorf("queues with jobs %v, want [a c]", names)
		}
		// The failed op's notification is dropped with it.
		for _, n := range rec.take() {
			if n.Queue == "b" || n.Queue == "bad" {
				t.Errorf("notification %+v from a rolled-back op", n)
			}
		}
	})
}

// A caller whose ctx ends before its op started gets ctx.Err(), and the op
// never runs; an op that started completes whatever its ctx does.
func TestOpContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)

		done, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		if err := s.w.do(done, true, func(*wtx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
			t.Fatalf("do with a cancelled ctx: %v, ran %v", err, ran)
		}

		release, blocked := blockWriter(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		result := make(chan error, 1)
		go func() {
			result <- s.w.do(ctx, true, func(*wtx) error { ran = true; return nil })
		}()
		synctest.Wait() // queued behind the blocking op
		cancel()
		if err := <-result; !errors.Is(err, context.Canceled) {
			t.Fatalf("do cancelled while queued: %v", err)
		}
		close(release)
		<-blocked
		// The writer has finished the blocking op's batch and skipped ours.
		if err := s.w.do(context.Background(), true, func(*wtx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if ran {
			t.Fatal("an op whose caller gave up ran")
		}

		// Cancelled while running: the op completes and commits.
		ctx, cancel = context.WithCancel(context.Background())
		go func() {
			result <- s.w.do(ctx, true, func(t *wtx) error {
				cancel()
				_, err := t.exec(stSetPaused, "default", "started", true, t.nowUS)
				return err
			})
		}()
		if err := <-result; err != nil {
			t.Fatalf("op cancelled while running: %v", err)
		}
		if qs, err := s.QueueSettings(context.Background(), "default", "started"); err != nil || !qs.Paused {
			t.Fatalf("the started op did not commit: %v, %v", qs, err)
		}
	})
}

// If COMMIT fails, every op of the batch gets the error and nothing of the
// batch persists. A deferred foreign key fails at COMMIT, not before.
func TestCommitFailureFailsEveryOp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		bg := context.Background()
		// The writer is idle: nothing else uses its connection now.
		for _, q := range []string{
			`PRAGMA foreign_keys = ON`,
			`CREATE TABLE parent (id INTEGER PRIMARY KEY)`,
			`CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		} {
			if _, err := s.w.conn.ExecContext(bg, q); err != nil {
				t.Fatal(err)
			}
		}
		release, blocked := blockWriter(t, s)
		before := s.w.commits.Load()
		errs := make([]error, 2)
		var wg sync.WaitGroup
		wg.Go(func() { _, errs[0] = s.Insert(bg, []store.InsertParams{job("q", "k")}) })
		wg.Go(func() {
			errs[1] = s.w.do(bg, true, func(*wtx) error {
				_, err := s.w.conn.ExecContext(bg, `INSERT INTO child VALUES (42)`)
				return err
			})
		})
		synctest.Wait()
		close(release)
		wg.Wait()
		<-blocked
		for i, err := range errs {
			if err == nil {
				t.Errorf("op %d succeeded in a batch whose COMMIT failed", i)
			}
		}
		if got := s.w.commits.Load() - before; got != 1 {
			t.Errorf("%d commits, want 1 (the blocking op's)", got)
		}
		if jobs, err := s.List(bg, store.ListParams{TenantID: "default"}); err != nil || len(jobs) != 0 {
			t.Errorf("after the failed commit: %d jobs, %v", len(jobs), err)
		}
		// The writer carries on.
		mustInsert(t, s, job("q", "k"))
	})
}

// Close finishes the running batch, answers the waiting ops with ErrClosed,
// and is idempotent; the store refuses work afterwards.
func TestCloseWithQueuedOps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		release, blocked := blockWriter(t, s)
		queued := make(chan error, 1)
		go func() {
			_, err := s.Insert(context.Background(), []store.InsertParams{job("q", "k")})
			queued <- err
		}()
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		synctest.Wait() // Close waits for the running batch
		close(release)
		if err := <-blocked; err != nil {
			t.Errorf("running op: %v", err)
		}
		if err := <-closed; err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-queued; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("queued op: %v, want nil or ErrClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := s.Insert(context.Background(), []store.InsertParams{job("q", "k")}); !errors.Is(err, ErrClosed) {
			t.Errorf("Insert after Close: %v, want ErrClosed", err)
		}
		if err := s.Ping(context.Background()); err == nil {
			t.Error("Ping after Close succeeded")
		}
	})
}

// Lease-only batches commit with synchronous=NORMAL, durable ones with the
// configured level.
func TestSyncLevelPerBatch(t *testing.T) {
	s := openTest(t)
	level := func() int {
		var n int
		if err := s.w.conn.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const normal, full = 1, 2
	mustInsert(t, s, job("q", "k"))
	if got := level(); got != full {
		t.Errorf("after Insert: synchronous = %d, want FULL", got)
	}
	l := mustLease(t, s, "q", 1)
	if got := level(); got != normal {
		t.Errorf("after Lease: synchronous = %d, want NORMAL", got)
	}
	if _, err := s.Complete(context.Background(), []store.Completion{{Lease: leaseOf(l[0]), Outcome: store.OutcomeSucceeded}}); err != nil {
		t.Fatal(err)
	}
	if got := level(); got != full {
		t.Errorf("after Complete: synchronous = %d, want FULL", got)
	}

	relaxed := openTest(t, Config{Durability: "relaxed"})
	mustInsert(t, relaxed, job("q", "k"))
	var n int
	if err := relaxed.w.conn.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&n); err != nil || n != normal {
		t.Errorf("relaxed store after Insert: synchronous = %d, %v", n, err)
	}
}

func TestCoalesce(t *testing.T) {
	at := func(s int64) store.Notification {
		return store.Notification{Kind: store.NotifyScheduled, At: fromMicros(s * 1e6)}
	}
	ins := func(q string) store.Notification {
		return store.Notification{Kind: store.NotifyInsert, TenantID: "t", Queue: q}
	}
	in := []store.Notification{ins("a"), at(5), ins("b"), ins("a"), at(3), at(9), ins("b")}
	got := coalesce(in)
	want := []store.Notification{ins("a"), at(3), ins("b")}
	if len(got) != len(want) {
		t.Fatalf("coalesce = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("coalesce = %+v, want %+v", got, want)
		}
	}
	// Past the small-batch path, with a map.
	var many []store.Notification
	for range 20 {
		many = append(many, ins("x"), ins("y"))
	}
	if got := coalesce(many); len(got) != 2 {
		t.Fatalf("coalesce of 40 = %+v", got)
	}
}

// Two Stores of one process on the same file hear each other's writes.
func TestStoresOnOneFileShareNotifications(t *testing.T) {
	path := testdb.SQLitePath(t)
	ctx := context.Background()
	a, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	heard := make(chan store.Notification, 4)
	b.Listen(func(n store.Notification) { heard <- n })
	if err := a.SetQueuePaused(ctx, "default", "q", true); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-heard:
		if n.Kind != store.NotifyQueue || n.Queue != "q" {
			t.Fatalf("heard %+v", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second store heard nothing")
	}
}
