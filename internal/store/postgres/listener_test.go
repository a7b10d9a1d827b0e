package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// TestListenerReconnect kills the listener's backend twice: each time the
// listener must reconnect by itself, say NotifyResync, and then deliver
// notifications committed afterwards. InsertTx is the probe because its
// notifications only ever arrive through the listener.
func TestListenerReconnect(t *testing.T) {
	checkLeaks(t)
	s, rec := openListening(t, "")
	ctx := t.Context()

	for round := 1; round <= 2; round++ {
		pid := s.listener.pid.Load()
		if pid == 0 {
			t.Fatalf("round %d: the listener has no connection", round)
		}
		var killed bool
		if err := s.Pool().QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed); err != nil || !killed {
			t.Fatalf("round %d: pg_terminate_backend(%d) = %v, %v", round, pid, killed, err)
		}
		rec.waitCount(t, "resync", isKind(store.NotifyResync), round)

		queue := []string{"", "after-first", "after-second"}[round]
		err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
			_, err := s.InsertTx(ctx, tx, []store.InsertParams{job(queue)})
			return err
		})
		if err != nil {
			t.Fatalf("round %d: InsertTx: %v", round, err)
		}
		rec.waitFor(t, "insert after reconnecting", isInsert("default", queue))
		if got := s.listener.pid.Load(); got == pid {
			t.Errorf("round %d: the listener still reports the killed backend %d", round, pid)
		}
	}
	if c := count(rec.all(), isKind(store.NotifyResync)); c != 2 {
		t.Errorf("%d resync notifications for 2 reconnections, want 2", c)
	}
}

// TestListenerClose checks that Close ends the listener even while it is
// waiting to reconnect, and that closing twice is harmless.
func TestListenerClose(t *testing.T) {
	checkLeaks(t)
	s, _ := openListening(t, "")
	pid := s.listener.pid.Load()
	if _, err := s.Pool().Exec(t.Context(), "SELECT pg_terminate_backend($1)", int32(pid)); err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	// Whether the listener is still waiting, backing off or reconnected,
	// Close must end it; the leak check verifies.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
