package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/store"
)

func TestInsertTx(t *testing.T) {
	checkLeaks(t)
	s, rec := openListening(t, "")
	ctx := t.Context()

	// insertTx runs InsertTx in a transaction of the caller's, then commits
	// or rolls back. InsertTx must deliver nothing itself: the caller may
	// still roll back.
	insertTx := func(commit bool, ps ...store.InsertParams) []store.InsertResult {
		t.Helper()
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatalf("Begin: %v", err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
		res, err := s.InsertTx(ctx, tx, ps)
		if err != nil {
			t.Fatalf("InsertTx: %v", err)
		}
		if len(res) != len(ps) {
			t.Fatalf("InsertTx returned %d results for %d jobs", len(res), len(ps))
		}
		if ns := rec.all(); len(ns) != 0 {
			t.Fatalf("InsertTx delivered %+v before the caller's commit", ns)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("Commit: %v", err)
			}
		} else if err := tx.Rollback(ctx); err != nil {
			t.Fatalf("Rollback: %v", err)
		}
		return res
	}

	keyed := job("rolled")
	keyed.UniqueKey = "k"
	rolled := insertTx(false, job("rolled"), keyed)
	for _, r := range rolled {
		if _, err := s.Get(ctx, "default", r.Job.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("job %d of the rolled-back transaction: Get = %v, want ErrNotFound", r.Job.ID, err)
		}
	}

	later := job("committed")
	later.Delay = time.Hour
	keyed.Queue = "committed"
	committed := insertTx(true, job("committed"), later, keyed)
	if committed[2].Existing {
		t.Errorf("the rolled-back transaction's unique key is still held")
	}
	for i, r := range committed {
		got, err := s.Get(ctx, "default", r.Job.ID)
		if err != nil {
			t.Fatalf("job %d of the committed transaction: %v", r.Job.ID, err)
		}
		if got.State != r.Job.State || !got.RunAt.Equal(r.Job.RunAt) {
			t.Errorf("job %d: stored %s at %v, InsertTx said %s at %v", i, got.State, got.RunAt, r.Job.State, r.Job.RunAt)
		}
	}
	// The commit's notifications arrive through the listener.
	rec.waitFor(t, "insert for the committed queue", isInsert("default", "committed"))
	n := rec.waitFor(t, "scheduled", isKind(store.NotifyScheduled))
	if !n.At.Equal(committed[1].Job.RunAt) {
		t.Errorf("scheduled notification At = %v, want the job's run_at %v", n.At, committed[1].Job.RunAt)
	}
	// PostgreSQL delivers in commit order and the rolled-back transaction
	// never committed: nothing of it may have arrived.
	if c := count(rec.all(), isInsert("default", "rolled")); c != 0 {
		t.Errorf("%d notifications for the rolled-back transaction", c)
	}

	// Within one caller transaction a key inserted earlier is found.
	err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		p := job("same-tx")
		p.UniqueKey = "same"
		first, err := s.InsertTx(ctx, tx, []store.InsertParams{p})
		if err != nil {
			return err
		}
		again, err := s.InsertTx(ctx, tx, []store.InsertParams{p})
		if err != nil {
			return err
		}
		if !again[0].Existing || again[0].Job.ID != first[0].Job.ID {
			t.Errorf("second InsertTx of a key in one transaction: Existing=%v job %d, want job %d", again[0].Existing, again[0].Job.ID, first[0].Job.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("InsertTx twice: %v", err)
	}
}
