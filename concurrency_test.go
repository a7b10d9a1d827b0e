package switchyard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// TestQueueConcurrencyIsALimit: a queue with concurrency 3 never runs more
// than 3 jobs at once, and does reach 3.
func TestQueueConcurrencyIsALimit(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.Queues = map[string]switchyard.QueueConfig{"narrow": {Concurrency: 3}}
		c := open(t, cfg)
		var running, peak atomic.Int32
		full := make(chan struct{})
		var fullOnce sync.Once
		gate := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(12)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			defer wg.Done()
			n := enter(&running, &peak)
			defer running.Add(-1)
			if n == 3 {
				fullOnce.Do(func() { close(full) })
			}
			<-gate
			return nil
		})
		batch := make([]switchyard.EnqueueParams, 12)
		for i := range batch {
			batch[i] = switchyard.EnqueueParams{Args: workArgs{N: i}, Opts: &switchyard.EnqueueOpts{Queue: "narrow"}}
		}
		if _, err := c.EnqueueMany(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		start(t, c)
		wait(t, full, "three jobs running")
		close(gate)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		wait(t, done, "all twelve jobs")
		if p := peak.Load(); p != 3 {
			t.Fatalf("peak concurrency %d, want 3", p)
		}
	})
}

// enter counts a job as running and raises peak to the count if it is
// higher; it returns the count.
func enter(running, peak *atomic.Int32) int32 {
	n := running.Add(1)
	for {
		p := peak.Load()
		if n <= p || peak.CompareAndSwap(p, n) {
			return n
		}
	}
}

// TestEnqueueInCallersTransaction: on PostgreSQL a job enqueued inside the
// caller's transaction exists if and only if the caller commits, and workers
// hear of it at commit.
func TestEnqueueInCallersTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := backends[1].db(t)
	c := open(t, testConfig(db))
	ran := make(chan string, 2)
	switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
		ran <- j.ID
		return nil
	})
	start(t, c)
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.EnqueueTx(ctx, tx, switchyard.EnqueueParams{Args: workArgs{N: 1}})
	if err != nil {
		t.Fatal(err)
	}
	rolledBack := res[0].Job.ID
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetJob(ctx, rolledBack); !errors.Is(err, switchyard.ErrNotFound) {
		t.Fatalf("rolled-back job: err = %v, want not found", err)
	}

	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE TABLE orders (id int)"); err != nil {
			return err
		}
		res, err = c.EnqueueTx(ctx, tx, switchyard.EnqueueParams{Args: workArgs{N: 2}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if id := wait(t, ran, "committed job"); id != res[0].Job.ID {
		t.Fatalf("ran job %s, want %s", id, res[0].Job.ID)
	}

	// SQLite has no caller transaction to join.
	sq := open(t, testConfig(backends[0].db(t)))
	if _, err := sq.EnqueueTx(ctx, nil, switchyard.EnqueueParams{Args: workArgs{}}); !errors.Is(err, switchyard.ErrUnsupported) {
		t.Fatalf("sqlite EnqueueTx err = %v", err)
	}
}

// TestStoredConcurrencyResizesWorkers: a queue's stored concurrency
// overrides the process's on every node, at once and in both directions,
// and AllQueues works a queue that first gets jobs after the start.
func TestStoredConcurrencyResizesWorkers(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.AllQueues = true
		cfg.DefaultConcurrency = 5
		c := open(t, cfg)
		ctx := context.Background()
		var running, peak atomic.Int32
		started := make(chan struct{}, 100)
		gate := make(chan struct{}, 100)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[workArgs]) error {
			enter(&running, &peak)
			defer running.Add(-1)
			started <- struct{}{}
			<-gate
			return nil
		})
		if err := c.SetQueueConcurrency(ctx, "fresh", 2); err != nil {
			t.Fatal(err)
		}
		start(t, c)
		// The queue gets its first jobs only now.
		batch := make([]switchyard.EnqueueParams, 12)
		for i := range batch {
			batch[i] = switchyard.EnqueueParams{Args: workArgs{N: i}, Opts: &switchyard.EnqueueOpts{Queue: "fresh"}}
		}
		if _, err := c.EnqueueMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
		wait(t, started, "first job")
		wait(t, started, "second job")
		// Two run and the limit holds: nothing else starts until one ends.
		gate <- struct{}{}
		wait(t, started, "third job, after one finished")
		if p := peak.Load(); p != 2 {
			t.Fatalf("peak %d with concurrency 2", p)
		}
		// Raise it: two more start at once beside the two running.
		if err := c.SetQueueConcurrency(ctx, "fresh", 4); err != nil {
			t.Fatal(err)
		}
		wait(t, started, "a job beyond the old limit")
		wait(t, started, "a fourth concurrent job")
		if q, err := c.Queue(ctx, "fresh"); err != nil || q.Concurrency != 4 {
			t.Fatalf("Queue = %+v, %v", q, err)
		}
		// Lower it to 1: once the running four finish, one at a time.
		if err := c.SetQueueConcurrency(ctx, "fresh", 1); err != nil {
			t.Fatal(err)
		}
		peak.Store(0)
		for range 4 {
			gate <- struct{}{}
		}
		for i := range 11 - 4 {
			wait(t, started, fmt.Sprintf("job %d after lowering", i))
			gate <- struct{}{}
		}
		// A new job starts only once the four have ended (the producer
		// counts a job until its handler returned), so each ran alone.
		if p := peak.Load(); p != 1 {
			t.Fatalf("peak %d after lowering the concurrency to 1", p)
		}
		stop(t, c)
	})
}
