package postgres_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/store/postgres"
	"github.com/switchyard-dev/switchyard/internal/store/storetest"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// TestMain runs the tests, stops the throwaway PostgreSQL cluster if testdb
// started one, and then fails the package if a goroutine was left running
// (the pool, the listener and its reconnect loop must all stop on Close).
// goleak.VerifyTestMain cannot be used: it exits before Shutdown could run.
func TestMain(m *testing.M) {
	code := m.Run()
	testdb.Shutdown()
	// Like VerifyTestMain, only a passing run is checked: a failed test may
	// legitimately leave goroutines behind, and its failure says more.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left running after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: testdb.PostgresURL(t)})
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}
