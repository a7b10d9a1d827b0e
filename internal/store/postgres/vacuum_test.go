package postgres

import (
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestBackgroundVacuum(t *testing.T) {
	checkLeaks(t)
	ctx := t.Context()
	s, err := Open(ctx, Config{URL: testdb.PostgresURL(t), VacuumEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	done := make(chan error, 10)
	s.onVacuum = func(err error) { done <- err }

	ps := make([]store.InsertParams, 25)
	for i := range ps {
		ps[i] = job("q")
	}
	if _, err := s.Insert(ctx, ps); err != nil {
		t.Fatal(err)
	}
	// 6 + 6 leased jobs cross the threshold of 10 once.
	for range 2 {
		if _, err := s.Lease(ctx, store.LeaseParams{TenantID: "default", Queue: "q", Limit: 6, Duration: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("background vacuum: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no background vacuum within %v", waitTimeout)
	}
	var n int64
	if err := s.Pool().QueryRow(ctx, "SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = 'switchyard' AND relname = 'jobs'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("vacuum_count = %d after the background vacuum, want at least 1", n)
	}
	select {
	case err := <-done:
		t.Errorf("a second vacuum ran (err %v) after only 2 more leased jobs", err)
	default:
	}
}
