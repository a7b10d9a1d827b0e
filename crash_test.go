package switchyard_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// childEnv selects what a re-executed test binary does (see runChild).
const childEnv = "SWITCHYARD_TEST_CHILD"

// ledgerArgs's jobs write a line to a ledger file when an attempt completes,
// so a test can count completions across processes.
type ledgerArgs struct {
	Ledger string `json:"ledger"`
}

func (ledgerArgs) Kind() string { return "test.ledger" }

func appendLedger(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runChild is a worker process for the crash tests. Modes:
//
//	hold: run ledger jobs but block inside the handler after announcing
//	      "RUNNING <id> <attempt>" on stdout, until killed.
//	lead: announce "LEADER" on stdout once leading maintenance, then block.
func runChild(mode string) int {
	ctx := context.Background()
	cfg := switchyard.Config{
		Database:      os.Getenv("SWITCHYARD_TEST_CHILD_DB"),
		LeaseDuration: time.Second,
		// Long: the failover test must see a dead leader replaced because
		// its session ended, not because its lease expired.
		LeaderTTL:     time.Minute,
		PollInterval:  200 * time.Millisecond,
		NoMaintenance: mode != "lead",
		OnLeaderChange: func(leader bool) {
			if leader && mode == "lead" {
				fmt.Println("LEADER")
			}
		},
	}
	c, err := switchyard.Open(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 3
	}
	switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[ledgerArgs]) error {
		fmt.Printf("RUNNING %s %d\n", j.ID, j.Attempt)
		select {} // hold the job until SIGKILL or SIGSTOP
	})
	if err := c.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child start:", err)
		return 3
	}
	select {}
}

// startChild runs this test binary as a worker in mode and returns it with a
// channel of the lines it prints.
func startChild(t *testing.T, mode, db string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "SWITCHYARD_TEST_CHILD_DB="+db)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, lines
}

// TestCrashedWorkerJobRunsAgain: a process holding a job is killed with
// SIGKILL; another process reruns the job once the lease expires. The ledger
// shows the killed attempt never completed and the rerun completed once.
func TestCrashedWorkerJobRunsAgain(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ledger := t.TempDir() + "/ledger"
		c := open(t, testConfig(db))
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[ledgerArgs]) error { return nil })
		job := enqueue(t, c, ledgerArgs{Ledger: ledger}, nil)

		child, lines := startChild(t, "hold", db)
		line := wait(t, lines, "child to run the job")
		if line != fmt.Sprintf("RUNNING %s 1", job.ID) {
			t.Fatalf("child said %q", line)
		}
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()

		// This process takes over: its maintenance rescues the expired
		// lease, then its worker reruns the job and records it in the ledger.
		cfg := testConfig(db)
		c2 := open(t, cfg)
		done := make(chan int, 2)
		switchyard.Handle(c2, func(ctx context.Context, j *switchyard.Job[ledgerArgs]) error {
			if err := appendLedger(j.Args.Ledger, fmt.Sprintf("completed %s attempt %d", j.ID, j.Attempt)); err != nil {
				return err
			}
			done <- j.Attempt
			return nil
		})
		start(t, c2)
		if attempt := wait(t, done, "rerun after lease expiry"); attempt != 2 {
			t.Fatalf("rerun was attempt %d, want 2", attempt)
		}
		stop(t, c2)
		got := getJob(t, c2, job.ID)
		if got.State != switchyard.StateSucceeded || got.Attempt != 2 {
			t.Fatalf("job = %+v", got)
		}
		if len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Message, "lease expired") {
			t.Fatalf("errors = %+v", got.Errors)
		}
		b, err := os.ReadFile(ledger)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("completed %s attempt 2\n", job.ID); string(b) != want {
			t.Fatalf("ledger = %q, want %q", b, want)
		}
	})
}

// TestStaleWorkerCannotComplete: a worker stalled past its lease
// cannot record an outcome; the newer attempt's outcome stands. The stalled
// worker is an external worker using the lease API, so each of its late
// operations is attempted for real.
func TestStaleWorkerCannotComplete(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		// The newer worker: it rescues the expired lease and completes
		// attempt 2.
		c := open(t, testConfig(db))
		done := make(chan struct{})
		var once sync.Once
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[ledgerArgs]) error {
			if j.Attempt != 2 {
				return fmt.Errorf("attempt %d", j.Attempt)
			}
			defer once.Do(func() { close(done) })
			return j.SetResult("newer attempt")
		})
		job := enqueue(t, c, ledgerArgs{}, nil)

		// The stale worker leases attempt 1 and then stalls past its lease.
		stale := open(t, testConfig(db))
		leased, err := stale.LeaseJobs(ctx, "default", 10, 50*time.Millisecond)
		if err != nil || len(leased) != 1 || leased[0].LeaseToken == "" {
			t.Fatalf("lease = %+v, %v", leased, err)
		}
		oldToken := leased[0].LeaseToken
		start(t, c)
		wait(t, done, "newer attempt")
		stop(t, c)

		// The stale worker wakes and tries every fenced operation.
		for name, op := range map[string]func() error{
			"complete":  func() error { return stale.CompleteJob(ctx, job.ID, oldToken, "stale result") },
			"fail":      func() error { return stale.FailJob(ctx, job.ID, oldToken, "stale failure") },
			"snooze":    func() error { return stale.SnoozeJob(ctx, job.ID, oldToken, time.Second) },
			"heartbeat": func() error { return stale.HeartbeatJob(ctx, job.ID, oldToken, time.Minute) },
			"garbage":   func() error { return stale.CompleteJob(ctx, job.ID, "not-a-token", nil) },
		} {
			if err := op(); !errors.Is(err, switchyard.ErrStaleLease) {
				t.Errorf("stale %s: err = %v, want ErrStaleLease", name, err)
			}
		}
		got := getJob(t, c, job.ID)
		if got.State != switchyard.StateSucceeded || !jsonEqual(got.Result, `"newer attempt"`) || got.Attempt != 2 {
			t.Fatalf("job = %+v", got)
		}
	})
}

// TestExternalWorkerLifecycle: the lease API completes, fails and snoozes
// with a current token, and heartbeats extend the lease.
func TestExternalWorkerLifecycle(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		ctx := context.Background()
		cfg := testConfig(db)
		cfg.ExternalKinds = []string{"remote.task"}
		c := open(t, cfg)
		a := enqueue(t, c, switchyard.RawArgs{KindName: "remote.task"}, &switchyard.EnqueueOpts{Priority: 1})
		b := enqueue(t, c, switchyard.RawArgs{KindName: "remote.task"}, &switchyard.EnqueueOpts{Priority: 2})
		d := enqueue(t, c, switchyard.RawArgs{KindName: "remote.task"}, &switchyard.EnqueueOpts{Priority: 3})
		jobs, err := c.LeaseJobs(ctx, "default", 3, time.Minute)
		if err != nil || len(jobs) != 3 || jobs[0].ID != a.ID || jobs[1].ID != b.ID || jobs[2].ID != d.ID {
			t.Fatalf("lease = %+v, %v", jobs, err)
		}
		if err := c.HeartbeatJob(ctx, a.ID, jobs[0].LeaseToken, time.Minute); err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		if err := c.CompleteJob(ctx, a.ID, jobs[0].LeaseToken, map[string]bool{"ok": true}); err != nil {
			t.Fatalf("complete: %v", err)
		}
		if err := c.FailJob(ctx, b.ID, jobs[1].LeaseToken, "remote error"); err != nil {
			t.Fatalf("fail: %v", err)
		}
		if err := c.SnoozeJob(ctx, d.ID, jobs[2].LeaseToken, time.Hour); err != nil {
			t.Fatalf("snooze: %v", err)
		}
		if got := getJob(t, c, a.ID); got.State != switchyard.StateSucceeded || !jsonEqual(got.Result, `{"ok":true}`) {
			t.Fatalf("a = %+v", got)
		}
		if got := getJob(t, c, b.ID); got.State != switchyard.StateRetryable || got.Errors[0].Message != "remote error" {
			t.Fatalf("b = %+v", got)
		}
		if got := getJob(t, c, d.ID); got.State != switchyard.StateScheduled || got.Attempt != 0 {
			t.Fatalf("d = %+v", got)
		}
		// Completing twice is stale: the attempt already ended.
		if err := c.CompleteJob(ctx, a.ID, jobs[0].LeaseToken, nil); !errors.Is(err, switchyard.ErrStaleLease) {
			t.Fatalf("second complete err = %v", err)
		}
	})
}

// TestLeaderFailover: exactly one of three nodes leads maintenance; when the
// leader process is killed with SIGKILL, a live node takes over at once,
// although the dead leader's lease would last another minute.
func TestLeaderFailover(t *testing.T) {
	t.Parallel()
	db := backends[1].db(t) // PostgreSQL: several processes share it
	child, lines := startChild(t, "lead", db)
	// The child leads first: start the other nodes once it announced it.
	if l := wait(t, lines, "child leadership"); l != "LEADER" {
		t.Fatalf("child said %q", l)
	}
	var mu sync.Mutex
	leaders := map[int]bool{}
	changes := make(chan int, 16)
	nodes := make([]*switchyard.Client, 2)
	for i := range nodes {
		cfg := testConfig(db)
		cfg.LeaderTTL = time.Minute
		cfg.OnLeaderChange = func(leader bool) {
			mu.Lock()
			leaders[i] = leader
			mu.Unlock()
			changes <- i
		}
		nodes[i] = open(t, cfg)
		start(t, nodes[i])
	}
	for _, n := range nodes {
		if n.IsLeader() {
			t.Fatal("a second node leads while the child does")
		}
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	i := wait(t, changes, "a live node to take over")
	mu.Lock()
	defer mu.Unlock()
	if !leaders[i] || leaders[1-i] {
		t.Fatalf("leaders = %v", leaders)
	}
}
