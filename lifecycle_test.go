package switchyard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

type workArgs struct {
	N int `json:"n"`
}

func (workArgs) Kind() string { return "test.work" }

func TestSucceedsWithResult(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		ran := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			defer close(ran)
			return j.SetResult(map[string]int{"double": j.Args.N * 2})
		})
		start(t, c)
		job := enqueue(t, c, workArgs{N: 21}, &switchyard.EnqueueOpts{Tags: []string{"a", "b"}, Priority: 1})
		if job.State != switchyard.StateAvailable || job.Attempt != 0 || job.Priority != 1 || job.MaxAttempts != 25 {
			t.Fatalf("enqueued job = %+v", job)
		}
		wait(t, ran, "handler")
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateSucceeded || got.Attempt != 1 || got.FinishedAt == nil || got.StartedAt == nil {
			t.Fatalf("job after run = %+v", got)
		}
		if !jsonEqual(got.Result, `{"double":42}`) {
			t.Fatalf("result = %s", got.Result)
		}
		if strings.Join(got.Tags, ",") != "a,b" || len(got.Errors) != 0 {
			t.Fatalf("tags %v errors %v", got.Tags, got.Errors)
		}
	})
}

func TestFailureRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		done := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			if j.Attempt < 3 {
				return fmt.Errorf("flaky dependency, attempt %d", j.Attempt)
			}
			close(done)
			return nil
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, nil)
		wait(t, done, "third attempt")
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateSucceeded || got.Attempt != 3 {
			t.Fatalf("job = state %s attempt %d", got.State, got.Attempt)
		}
		if len(got.Errors) != 2 || got.Errors[0].Attempt != 1 || got.Errors[1].Message != "flaky dependency, attempt 2" || got.Errors[0].At.IsZero() {
			t.Fatalf("errors = %+v", got.Errors)
		}
	})
}

func TestDeadAfterMaxAttemptsAndPanics(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		last := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			if j.Attempt == j.MaxAttempts {
				defer close(last)
			}
			panic(fmt.Sprintf("boom %d", j.Attempt))
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, &switchyard.EnqueueOpts{MaxAttempts: 2})
		wait(t, last, "last attempt")
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateDead || got.Attempt != 2 || got.FinishedAt == nil {
			t.Fatalf("job = %+v", got)
		}
		if len(got.Errors) != 2 || !strings.HasPrefix(got.Errors[1].Message, "panic: boom 2") {
			t.Fatalf("errors = %+v", got.Errors)
		}
	})
}

func TestBackoffPolicyPerKind(t *testing.T) {
	t.Parallel()
	p := switchyard.ExponentialBackoff{Base: 100 * time.Millisecond, Max: time.Second}
	for attempt := 1; attempt <= 30; attempt++ {
		limit := min(time.Second, 100*time.Millisecond<<min(attempt-1, 20))
		for range 50 {
			if d := p.NextRetry(attempt); d < 0 || d > limit {
				t.Fatalf("attempt %d: delay %s outside [0, %s]", attempt, d, limit)
			}
		}
	}
	// Full jitter: the delays of one attempt are spread, not all equal.
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[p.NextRetry(5)] = true
	}
	if len(seen) < 5 {
		t.Fatalf("delays not jittered: %v", seen)
	}
	// A kind's own policy overrides the client's.
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.Retry = switchyard.ExponentialBackoff{Base: time.Hour, Max: time.Hour}
		c := open(t, cfg)
		done := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			if j.Attempt == 1 {
				return errors.New("once")
			}
			close(done)
			return nil
		}, switchyard.WithRetry(fastRetry{}))
		start(t, c)
		enqueue(t, c, workArgs{}, nil)
		wait(t, done, "retry under the kind's policy")
	})
}

func TestDiscardEndsDead(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		ran := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			defer close(ran)
			return switchyard.Discard(errors.New("bad input, never retry"))
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, nil)
		wait(t, ran, "handler")
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateDead || got.Attempt != 1 || len(got.Errors) != 1 || got.Errors[0].Message != "bad input, never retry" {
			t.Fatalf("job = %+v", got)
		}
	})
}

func TestSnoozeKeepsAttempts(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		done := make(chan struct{})
		var calls atomic.Int32
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			// Poll an external system with growing intervals: three snoozes,
			// each attempt numbered 1 because snoozing gives the attempt back.
			if j.Attempt != 1 {
				return switchyard.Discard(fmt.Errorf("attempt %d, want 1", j.Attempt))
			}
			if n := calls.Add(1); n <= 3 {
				return switchyard.Snooze(time.Duration(n) * 5 * time.Millisecond)
			}
			close(done)
			return nil
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, nil)
		wait(t, done, "fourth call")
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateSucceeded || got.Attempt != 1 || len(got.Errors) != 0 {
			t.Fatalf("job = %+v", got)
		}
	})
}

func TestRetryAfterSetsTheRetryTime(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		ran := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			defer close(ran)
			return switchyard.RetryAfter(time.Hour, errors.New("429 from upstream"))
		})
		start(t, c)
		before := time.Now()
		job := enqueue(t, c, workArgs{}, nil)
		wait(t, ran, "handler")
		stop(t, c)
		got := getJob(t, c, job.ID)
		// Full-jitter backoff after attempt 1 is at most 1s; an hour can only
		// come from RetryAfter.
		if got.State != switchyard.StateRetryable || got.Attempt != 1 || len(got.Errors) != 1 ||
			got.Errors[0].Message != "429 from upstream" || got.RunAt.Before(before.Add(59*time.Minute)) {
			t.Fatalf("job = %+v", got)
		}
	})
}

// TestUnstorableOutputIsCleaned: PostgreSQL refuses NUL and invalid UTF-8
// in text and jsonb; a handler's output carrying them must still be
// recorded (cleaned), never block the outcomes behind it.
func TestUnstorableOutputIsCleaned(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		done := make(chan struct{}, 2)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			defer func() { done <- struct{}{} }()
			if j.Attempt == 1 {
				return errors.New("bad\x00byte and \xff")
			}
			if err := j.SetProgress(ctx, map[string]string{"p": "a\x00b"}); err != nil {
				return err
			}
			return j.SetResult(map[string]string{"r": "x\x00y"})
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, &switchyard.EnqueueOpts{MaxAttempts: 2})
		wait(t, done, "first attempt")
		wait(t, done, "second attempt")
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateSucceeded || len(got.Errors) != 1 || got.Errors[0].Message != "bad\uFFFDbyte and \uFFFD" ||
			!jsonEqual(got.Result, `{"r":"x\ufffdy"}`) || !jsonEqual(got.Progress, `{"p":"a\ufffdb"}`) {
			t.Fatalf("job = %+v, result %s, progress %s", got, got.Result, got.Progress)
		}
		_, err := c.Enqueue(t.Context(), switchyard.RawArgs{KindName: workArgs{}.Kind(), JSON: []byte(`{"n":"\u0000"}`)}, nil)
		if !errors.Is(err, switchyard.ErrInvalidArgument) || !strings.Contains(err.Error(), "NUL") {
			t.Fatalf("args with NUL: %v", err)
		}
	})
}

func TestTimeoutFailsAttempt(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		ran := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			defer close(ran)
			<-ctx.Done()
			return ctx.Err()
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, &switchyard.EnqueueOpts{Timeout: 20 * time.Millisecond, MaxAttempts: 1})
		wait(t, ran, "handler")
		stop(t, c)
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateDead || len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Message, "timed out after 20ms") || got.Timeout != 0.02 {
			t.Fatalf("job = %+v", got)
		}
	})
}

func TestCancelRunningJob(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		running := make(chan struct{})
		cause := make(chan error, 1)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			close(running)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return nil // even a "success" after cancellation must not win
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, nil)
		wait(t, running, "job to start")
		got, err := c.CancelJob(context.Background(), job.ID)
		if err != nil || got.State != switchyard.StateCancelled {
			t.Fatalf("cancel = %+v, %v", got, err)
		}
		if err := wait(t, cause, "handler context cancelled"); !errors.Is(err, switchyard.ErrJobCancelled) {
			t.Fatalf("cause = %v", err)
		}
		stop(t, c)
		if got := getJob(t, c, job.ID); got.State != switchyard.StateCancelled || got.FinishedAt == nil {
			t.Fatalf("job = %+v", got)
		}
		// A finished job cannot be cancelled; it can be retried.
		if _, err := c.CancelJob(context.Background(), job.ID); !errors.Is(err, switchyard.ErrConflict) {
			t.Fatalf("second cancel err = %v", err)
		}
	})
}

func TestCancelDiscardRetryQueued(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error { return nil })
		ctx := context.Background()
		a := enqueue(t, c, workArgs{}, &switchyard.EnqueueOpts{Delay: time.Hour})
		b := enqueue(t, c, workArgs{}, nil)
		if a.State != switchyard.StateScheduled {
			t.Fatalf("delayed job state %s", a.State)
		}
		if got, err := c.CancelJob(ctx, a.ID); err != nil || got.State != switchyard.StateCancelled {
			t.Fatalf("cancel scheduled = %+v, %v", got, err)
		}
		if got, err := c.DiscardJob(ctx, b.ID); err != nil || got.State != switchyard.StateDead {
			t.Fatalf("discard = %+v, %v", got, err)
		}
		for _, id := range []string{a.ID, b.ID} {
			got, err := c.RetryJob(ctx, id)
			if err != nil || got.State != switchyard.StateAvailable || got.FinishedAt != nil {
				t.Fatalf("retry %s = %+v, %v", id, got, err)
			}
			if _, err := c.RetryJob(ctx, id); !errors.Is(err, switchyard.ErrConflict) {
				t.Fatalf("retry of available job err = %v", err)
			}
		}
		for _, id := range []string{"999999", "abc", ""} {
			if _, err := c.CancelJob(ctx, id); !errors.Is(err, switchyard.ErrNotFound) {
				t.Fatalf("cancel %q err = %v", id, err)
			}
		}
		// Retried jobs run.
		n := make(chan struct{}, 2)
		c2 := open(t, testConfig(db))
		switchyard.Handle(c2, func(ctx context.Context, j *switchyard.Job[workArgs]) error { n <- struct{}{}; return nil })
		start(t, c2)
		wait(t, n, "first retried job")
		wait(t, n, "second retried job")
	})
}

func TestRetryExhaustedDeadJobGetsOneMoreAttempt(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		attempts := make(chan int, 4)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			attempts <- j.Attempt
			if j.Attempt == 1 {
				return errors.New("fails once")
			}
			return nil
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, &switchyard.EnqueueOpts{MaxAttempts: 1})
		wait(t, attempts, "first attempt")
		stop(t, c)
		if got := getJob(t, c, job.ID); got.State != switchyard.StateDead {
			t.Fatalf("state %s", got.State)
		}
		got, err := c.RetryJob(context.Background(), job.ID)
		if err != nil || got.MaxAttempts != 2 || got.State != switchyard.StateAvailable {
			t.Fatalf("retry = %+v, %v", got, err)
		}
		c2 := open(t, testConfig(db))
		done := make(chan struct{})
		switchyard.Handle(c2, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			if j.Attempt != 2 {
				return fmt.Errorf("attempt %d", j.Attempt)
			}
			close(done)
			return nil
		})
		start(t, c2)
		wait(t, done, "manual retry")
		stop(t, c2)
		if got := getJob(t, c2, job.ID); got.State != switchyard.StateSucceeded || len(got.Errors) != 1 {
			t.Fatalf("after retry %+v", got)
		}
	})
}

func TestPriorityThenRunAtOrder(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.Queues = map[string]switchyard.QueueConfig{"ordered": {Concurrency: 1}}
		cfg.FetchBatch = 1
		c := open(t, cfg)
		var mu sync.Mutex
		var order []int
		done := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, j.Args.N)
			if len(order) == 6 {
				close(done)
			}
			return nil
		})
		// Enqueued before Start, so the order is the store's, not arrival's.
		past := time.Now().Add(-time.Minute)
		for _, j := range []struct {
			n, prio int
			runAt   time.Time
		}{{6, 4, time.Time{}}, {4, 2, time.Time{}}, {5, 3, time.Time{}}, {1, 1, time.Time{}}, {3, 2, past}, {2, 1, time.Time{}}} {
			enqueue(t, c, workArgs{N: j.n}, &switchyard.EnqueueOpts{Queue: "ordered", Priority: j.prio, RunAt: j.runAt})
		}
		start(t, c)
		wait(t, done, "six jobs")
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(order) != "[1 2 3 4 5 6]" {
			t.Fatalf("run order %v", order)
		}
	})
}

func TestDelayedJobRunsAfterPromotion(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		ran := make(chan *switchyard.JobRow, 1)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			ran <- j.JobRow
			return nil
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, &switchyard.EnqueueOpts{Delay: 50 * time.Millisecond})
		if job.State != switchyard.StateScheduled {
			t.Fatalf("state %s", job.State)
		}
		got := wait(t, ran, "delayed job")
		if got.StartedAt.Before(job.RunAt) {
			t.Fatalf("started %s before run_at %s", got.StartedAt, job.RunAt)
		}
	})
}

func TestPauseAndResumeQueue(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		c := open(t, testConfig(db))
		ran := make(chan string, 4)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			ran <- j.Queue
			return nil
		})
		cfg := testConfig(db)
		cfg.Queues = map[string]switchyard.QueueConfig{"held": {Concurrency: 2}, "free": {Concurrency: 2}}
		if err := c.PauseQueue(ctx, "held"); err != nil {
			t.Fatal(err)
		}
		worker := open(t, cfg)
		switchyard.Handle(worker, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			ran <- j.Queue
			return nil
		})
		start(t, worker)
		held := enqueue(t, c, workArgs{}, &switchyard.EnqueueOpts{Queue: "held"})
		enqueue(t, c, workArgs{}, &switchyard.EnqueueOpts{Queue: "free"})
		if q := wait(t, ran, "free queue's job"); q != "free" {
			t.Fatalf("ran a job of paused queue %q", q)
		}
		qs, err := c.Queues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var heldInfo *switchyard.QueueInfo
		for i := range qs {
			if qs[i].Name == "held" {
				heldInfo = &qs[i]
			}
		}
		if heldInfo == nil || !heldInfo.Paused || heldInfo.Counts[switchyard.StateAvailable] != 1 {
			t.Fatalf("queues = %+v", qs)
		}
		if got := getJob(t, c, held.ID); got.State != switchyard.StateAvailable {
			t.Fatalf("paused queue's job is %s", got.State)
		}
		if err := c.ResumeQueue(ctx, "held"); err != nil {
			t.Fatal(err)
		}
		if q := wait(t, ran, "resumed queue's job"); q != "held" {
			t.Fatalf("ran %q", q)
		}
	})
}

func TestProgressIsStored(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		seen := make(chan *switchyard.JobRow)
		release := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			if err := j.SetProgress(ctx, map[string]int{"done": 3, "total": 10}); err != nil {
				return err
			}
			seen <- j.JobRow
			<-release
			return nil
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, nil)
		wait(t, seen, "progress")
		got := getJob(t, c, job.ID)
		close(release)
		if got.State != switchyard.StateRunning || !jsonEqual(got.Progress, `{"done":3,"total":10}`) {
			t.Fatalf("job = state %s progress %s", got.State, got.Progress)
		}
	})
}

func TestUniqueKeyUnderConcurrency(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.ExternalKinds = []string{"test.external"}
		c := open(t, cfg)
		args := switchyard.RawArgs{KindName: "test.external", JSON: json.RawMessage(`{"order":7}`)}
		var wg sync.WaitGroup
		ids := make([]string, 50)
		created := make([]bool, 50)
		errs := make([]error, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := c.Enqueue(context.Background(), args, &switchyard.EnqueueOpts{UniqueKey: "order-7"})
				if err != nil {
					errs[i] = err
					return
				}
				ids[i], created[i] = res.Job.ID, !res.Existing
			}()
		}
		wg.Wait()
		nCreated := 0
		for i := range 50 {
			if errs[i] != nil {
				t.Fatalf("enqueue %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("enqueue %d got job %s, enqueue 0 got %s", i, ids[i], ids[0])
			}
			if created[i] {
				nCreated++
			}
		}
		if nCreated != 1 {
			t.Fatalf("%d enqueues created a job, want 1", nCreated)
		}
		jobs, _, err := c.ListJobs(context.Background(), switchyard.ListParams{})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("list = %d jobs, %v", len(jobs), err)
		}
	})
}

type strictArgs struct {
	Email string `json:"email"`
}

func (strictArgs) Kind() string { return "test.strict" }

func (a strictArgs) Validate() error {
	if !strings.Contains(a.Email, "@") {
		return fmt.Errorf("email %q has no @", a.Email)
	}
	return nil
}

func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		c := open(t, testConfig(db))
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[strictArgs]) error { return nil })
		raw := func(kind, js string) switchyard.JobArgs {
			return switchyard.RawArgs{KindName: kind, JSON: json.RawMessage(js)}
		}
		big := `{"email":"a@b","pad":"` + strings.Repeat("x", 1<<20) + `"}`
		cases := []struct {
			name string
			args switchyard.JobArgs
			opts *switchyard.EnqueueOpts
			want string
		}{
			{"unknown kind", raw("nobody.handles.this", `{}`), nil, `unknown kind "nobody.handles.this"`},
			{"empty kind", raw("", `{}`), nil, "kind must not be empty"},
			{"args not an object", raw("test.strict", `[1,2]`), nil, "args must be a JSON object"},
			{"args malformed", raw("test.strict", `{"email":`), nil, "args"},
			{"args wrong type", raw("test.strict", `{"email":5}`), nil, "cannot unmarshal number"},
			{"args unknown field", raw("test.strict", `{"email":"a@b","admin":true}`), nil, `unknown field "admin"`},
			{"args fail validation", strictArgs{Email: "nope"}, nil, `email "nope" has no @`},
			{"priority too high", strictArgs{Email: "a@b"}, &switchyard.EnqueueOpts{Priority: 5}, "priority must be between 1 (highest) and 4, got 5"},
			{"priority negative", strictArgs{Email: "a@b"}, &switchyard.EnqueueOpts{Priority: -1}, "priority must be between"},
			{"negative delay", strictArgs{Email: "a@b"}, &switchyard.EnqueueOpts{Delay: -time.Second}, "delay must not be negative"},
			{"delay and run_at", strictArgs{Email: "a@b"}, &switchyard.EnqueueOpts{Delay: time.Second, RunAt: time.Now()}, "not both"},
			{"oversized args", raw("test.strict", big), nil, "the limit is 1048576"},
			{"bad queue name", strictArgs{Email: "a@b"}, &switchyard.EnqueueOpts{Queue: "no spaces"}, "only letters, digits"},
			{"negative max attempts", strictArgs{Email: "a@b"}, &switchyard.EnqueueOpts{MaxAttempts: -2}, "max_attempts"},
			{"negative timeout", strictArgs{Email: "a@b"}, &switchyard.EnqueueOpts{Timeout: -time.Second}, "timeout must not be negative"},
		}
		for _, tc := range cases {
			_, err := c.Enqueue(ctx, tc.args, tc.opts)
			if !errors.Is(err, switchyard.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want invalid argument containing %q", tc.name, err, tc.want)
			}
		}
		// A batch with one bad job writes none of the good ones.
		_, err := c.EnqueueMany(ctx, []switchyard.EnqueueParams{
			{Args: strictArgs{Email: "ok@x"}},
			{Args: strictArgs{Email: "ok@y"}, Opts: &switchyard.EnqueueOpts{Priority: 9}},
		})
		if !errors.Is(err, switchyard.ErrInvalidArgument) || !strings.Contains(err.Error(), "job 1") {
			t.Fatalf("batch err = %v", err)
		}
		jobs, _, err := c.ListJobs(ctx, switchyard.ListParams{})
		if err != nil || len(jobs) != 0 {
			t.Fatalf("bad input wrote %d jobs (err %v)", len(jobs), err)
		}
		// The same job, well formed, is accepted.
		if _, err := c.Enqueue(ctx, strictArgs{Email: "a@b"}, nil); err != nil {
			t.Fatalf("good job: %v", err)
		}
	})
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		c := open(t, testConfig(db))
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error { return nil })
		batch := make([]switchyard.EnqueueParams, 25)
		for i := range batch {
			q := "even"
			if i%2 == 1 {
				q = "odd"
			}
			batch[i] = switchyard.EnqueueParams{Args: workArgs{N: i}, Opts: &switchyard.EnqueueOpts{Queue: q}}
		}
		if _, err := c.EnqueueMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		cursor := ""
		pages := 0
		for {
			jobs, next, err := c.ListJobs(ctx, switchyard.ListParams{Queue: "even", Limit: 5, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, j := range jobs {
				if j.Queue != "even" || seen[j.ID] {
					t.Fatalf("page %d: job %+v (seen %v)", pages, j, seen[j.ID])
				}
				seen[j.ID] = true
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 13 || pages != 3 {
			t.Fatalf("saw %d jobs in %d pages", len(seen), pages)
		}
		if _, _, err := c.ListJobs(ctx, switchyard.ListParams{Cursor: "zzz"}); !errors.Is(err, switchyard.ErrInvalidArgument) {
			t.Fatalf("bad cursor err = %v", err)
		}
		if _, _, err := c.ListJobs(ctx, switchyard.ListParams{State: "exploded"}); !errors.Is(err, switchyard.ErrInvalidArgument) {
			t.Fatalf("bad state err = %v", err)
		}
	})
}

func TestTenantsAreIsolated(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		cfgA, cfgB := testConfig(db), testConfig(db)
		cfgA.TenantID, cfgB.TenantID = "acme", "globex"
		cfgA.ExternalKinds = []string{"test.x"}
		a := open(t, cfgA)
		b := open(t, cfgB)
		job := enqueue(t, a, switchyard.RawArgs{KindName: "test.x"}, nil)
		for name, op := range map[string]func() error{
			"get":     func() error { _, err := b.GetJob(ctx, job.ID); return err },
			"cancel":  func() error { _, err := b.CancelJob(ctx, job.ID); return err },
			"discard": func() error { _, err := b.DiscardJob(ctx, job.ID); return err },
			"retry":   func() error { _, err := b.RetryJob(ctx, job.ID); return err },
		} {
			if err := op(); !errors.Is(err, switchyard.ErrNotFound) {
				t.Errorf("%s of another tenant's job: err = %v, want not found", name, err)
			}
		}
		if got := getJob(t, a, job.ID); got.State != switchyard.StateAvailable {
			t.Fatalf("other tenant changed the job: %+v", got)
		}
		if jobs, _, _ := b.ListJobs(ctx, switchyard.ListParams{}); len(jobs) != 0 {
			t.Fatalf("tenant b lists %d jobs", len(jobs))
		}
	})
}

func TestGracefulShutdownReleasesUnfinishedJobs(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		running := make(chan struct{})
		causes := make(chan error, 1)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			close(running)
			<-ctx.Done() // a long job that honours cancellation
			causes <- context.Cause(ctx)
			return ctx.Err()
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, nil)
		wait(t, running, "job start")
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // deadline already passed: cancel running jobs at once
		if err := c.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if err := wait(t, causes, "cancellation"); !errors.Is(err, switchyard.ErrShutdown) {
			t.Fatalf("cause = %v", err)
		}
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateAvailable || got.Attempt != 0 || len(got.Errors) != 0 {
			t.Fatalf("released job = %+v", got)
		}
		// Released, not waiting for lease expiry: the next worker runs it.
		c2 := open(t, testConfig(db))
		again := make(chan int, 1)
		switchyard.Handle(c2, func(ctx context.Context, j *switchyard.Job[workArgs]) error { again <- j.Attempt; return nil })
		start(t, c2)
		if n := wait(t, again, "rerun"); n != 1 {
			t.Fatalf("rerun attempt %d", n)
		}
	})
}

func TestShutdownWaitsForRunningJobs(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		running := make(chan struct{})
		release := make(chan struct{})
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			close(running)
			<-release
			return nil
		})
		start(t, c)
		job := enqueue(t, c, workArgs{}, nil)
		wait(t, running, "job start")
		stopped := make(chan error)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stopped <- c.Stop(ctx)
		}()
		close(release)
		if err := wait(t, stopped, "stop"); err != nil {
			t.Fatal(err)
		}
		if got := getJob(t, c, job.ID); got.State != switchyard.StateSucceeded {
			t.Fatalf("state %s", got.State)
		}
	})
}
