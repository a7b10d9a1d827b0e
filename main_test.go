package switchyard_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestMain(m *testing.M) {
	// The crash tests re-run this binary as a worker process to kill.
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	testdb.Main(m)
}

// backend is a database the lifecycle tests run against.
type backend struct {
	name string
	db   func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + testdb.SQLitePath(t) }},
	{"postgres", func(t *testing.T) string { return testdb.PostgresURL(t) }},
}

// fastRetry retries at once, so retry tests need no waiting.
type fastRetry struct{}

func (fastRetry) NextRetry(int) time.Duration { return time.Millisecond }

// testConfig is a client config for tests: fast retries and lease checks.
func testConfig(db string) switchyard.Config {
	return switchyard.Config{
		Database:      db,
		Retry:         fastRetry{},
		LeaseDuration: 2 * time.Second,
		PollInterval:  200 * time.Millisecond,
		LeaderTTL:     900 * time.Millisecond,
		Logger:        quietLogger,
	}
}

// quietLogger keeps routine engine logs (leadership changes) out of test
// output; warnings and errors still show.
var quietLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// jsonEqual compares JSON by value: PostgreSQL's jsonb normalises spacing.
func jsonEqual(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func open(t *testing.T, cfg switchyard.Config) *switchyard.Client {
	t.Helper()
	c, err := switchyard.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Database, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func start(t *testing.T, c *switchyard.Client) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
}

// stop shuts c down, flushing recorded outcomes, so the store can be checked.
func stop(t *testing.T, c *switchyard.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// wait receives from ch; see testdb.Receive.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testdb.Receive(t, ch, what)
}

func enqueue(t *testing.T, c *switchyard.Client, args switchyard.JobArgs, opts *switchyard.EnqueueOpts) *switchyard.JobRow {
	t.Helper()
	res, err := c.Enqueue(context.Background(), args, opts)
	if err != nil {
		t.Fatalf("enqueue %s: %v", args.Kind(), err)
	}
	return res.Job
}

func getJob(t *testing.T, c *switchyard.Client, id string) *switchyard.JobRow {
	t.Helper()
	j, err := c.GetJob(context.Background(), id)
	if err != nil {
		t.Fatalf("get job %s: %v", id, err)
	}
	return j
}
