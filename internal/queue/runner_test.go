package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

func TestExponentialBackoffBoundsAndOverflow(t *testing.T) {
	t.Parallel()
	b := ExponentialBackoff{Base: time.Second, Max: time.Hour}
	for _, attempt := range []int{-3, 0, 1, 2, 10, 12, 13, 40, 62, 63, 64, 1000} {
		limit := time.Hour
		if attempt <= 12 {
			limit = time.Second << max(attempt-1, 0)
		}
		for range 200 {
			if d := b.NextRetry(attempt); d < 0 || d > limit {
				t.Fatalf("attempt %d: %s not in [0, %s]", attempt, d, limit)
			}
		}
	}
	// Defaults apply to the zero value.
	if d := (ExponentialBackoff{}).NextRetry(1); d < 0 || d > time.Second {
		t.Fatalf("zero value, attempt 1: %s", d)
	}
}

type fixedRetry time.Duration

func (f fixedRetry) NextRetry(int) time.Duration { return time.Duration(f) }

// TestOutcomeClassification covers how every way a handler can end turns
// into what the completer records.
func TestOutcomeClassification(t *testing.T) {
	t.Parallel()
	r := &Runner{cfg: Config{Retry: fixedRetry(time.Minute)}}
	job := &store.Job{ID: 7, Attempt: 2, LeaseToken: 99}
	kindRetry := &Kind{Name: "k", Retry: fixedRetry(time.Second)}
	cases := []struct {
		name     string
		kind     *Kind
		err      error
		cause    error
		runErr   error
		timeout  time.Duration
		want     store.Outcome
		record   bool
		errText  string
		retryIn  time.Duration
		delay    time.Duration
		resultOK bool
	}{
		{name: "success", err: nil, want: store.OutcomeSucceeded, record: true, resultOK: true},
		{name: "failure uses the runner's policy", err: errors.New("boom"), want: store.OutcomeFailed, record: true, errText: "boom", retryIn: time.Minute},
		{name: "failure uses the kind's policy", kind: kindRetry, err: errors.New("boom"), want: store.OutcomeFailed, record: true, errText: "boom", retryIn: time.Second},
		{name: "snooze", err: fmt.Errorf("wrapped: %w", &SnoozeError{Delay: 3 * time.Second}), want: store.OutcomeSnoozed, record: true, delay: 3 * time.Second},
		{name: "discard", err: &DiscardError{Err: errors.New("never")}, want: store.OutcomeDead, record: true, errText: "never"},
		{name: "timeout", err: context.DeadlineExceeded, runErr: context.DeadlineExceeded, timeout: 50 * time.Millisecond, want: store.OutcomeFailed, record: true, errText: "timed out after 50ms", retryIn: time.Minute},
		{name: "cancelled job is not recorded", err: context.Canceled, cause: errJobCancelled, want: store.OutcomeCancelled, record: false},
		{name: "lost lease is not recorded", err: nil, cause: errLeaseLost, record: false},
		{name: "shutdown releases", err: context.Canceled, cause: errShutdown, want: store.OutcomeReleased, record: true},
		{name: "success during shutdown counts", err: nil, cause: errShutdown, want: store.OutcomeSucceeded, record: true, resultOK: true},
	}
	for _, tc := range cases {
		exec := &Execution{Job: job, Result: []byte(`{"ok":1}`)}
		c, record := r.outcome(job, tc.kind, exec, tc.err, tc.cause, tc.runErr, tc.timeout)
		if record != tc.record {
			t.Errorf("%s: record = %v, want %v", tc.name, record, tc.record)
		}
		if !record && tc.want == 0 {
			continue
		}
		if c.Outcome != tc.want || c.Lease != (store.Lease{JobID: 7, Attempt: 2, Token: 99}) {
			t.Errorf("%s: completion %+v, want outcome %d", tc.name, c, tc.want)
		}
		if !strings.Contains(c.Error, tc.errText) || c.RetryIn != tc.retryIn || c.Delay != tc.delay {
			t.Errorf("%s: error %q retry %s delay %s", tc.name, c.Error, c.RetryIn, c.Delay)
		}
		if tc.resultOK != (string(c.Result) == `{"ok":1}`) {
			t.Errorf("%s: result %s", tc.name, c.Result)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{NodeID: "n"}); err == nil || !strings.Contains(err.Error(), "Store is required") {
		t.Fatalf("missing store: %v", err)
	}
}

// A job cancelled after it was leased here and before a worker started it
// does not start.
func TestCancelBeforeStartSkipsTheJob(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	ran := 0
	reg.Add(&Kind{Name: "k", Handler: func(ctx context.Context, exec *Execution) error { ran++; return nil }})
	r := &Runner{cfg: Config{Registry: reg}, running: map[int64]*runningJob{}, jobStarted: make(chan struct{}, 1)}
	r.log = slog.New(slog.DiscardHandler)
	r.workCtx, r.cancelWork = context.WithCancelCause(context.Background())
	defer r.cancelWork(nil)

	if r.cancelRunning(7, errJobCancelled) {
		t.Fatal("cancelRunning found a running job 7")
	}
	r.execute(&store.Job{ID: 7, Kind: "k", Attempt: 1, LeaseToken: 1})
	if ran != 0 || len(r.running) != 0 {
		t.Fatalf("the cancelled job ran (%d) or stayed registered (%d)", ran, len(r.running))
	}
	// The ring forgets old ids: after 256 more cancellations job 7 would run.
	for id := int64(100); id < 100+int64(len(r.cancelledEarlyRing)); id++ {
		r.cancelRunning(id, errJobCancelled)
	}
	if _, ok := r.cancelledEarly[7]; ok || len(r.cancelledEarly) != len(r.cancelledEarlyRing) {
		t.Fatalf("ring holds %d ids, 7 still in it: %v", len(r.cancelledEarly), ok)
	}
}
