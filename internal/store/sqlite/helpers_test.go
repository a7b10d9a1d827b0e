package sqlite

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// openTest opens a fresh store closed when t ends.
func openTest(t testing.TB, cfg ...Config) *Store {
	t.Helper()
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	if c.Path == "" {
		c.Path = testdb.SQLitePath(t)
	}
	s, err := Open(context.Background(), c)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// recorder collects notifications.
type recorder struct {
	mu sync.Mutex
	ns []store.Notification
}

func listen(s *Store) *recorder {
	r := &recorder{}
	s.Listen(func(n store.Notification) {
		r.mu.Lock()
		r.ns = append(r.ns, n)
		r.mu.Unlock()
	})
	return r
}

// take returns and forgets the notifications received so far.
func (r *recorder) take() []store.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	ns := r.ns
	r.ns = nil
	return ns
}

func job(queue, kind string) store.InsertParams {
	return store.InsertParams{TenantID: "default", Queue: queue, Kind: kind, Args: []byte(`{"n":1}`), Priority: 2, MaxAttempts: 3}
}

func mustInsert(t testing.TB, s *Store, ps ...store.InsertParams) []*store.Job {
	t.Helper()
	res, err := s.Insert(context.Background(), ps)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	jobs := make([]*store.Job, len(res))
	for i, r := range res {
		jobs[i] = r.Job
	}
	return jobs
}

func mustLease(t testing.TB, s *Store, queue string, limit int) []*store.Job {
	t.Helper()
	jobs, err := s.Lease(context.Background(), store.LeaseParams{TenantID: "default", Queue: queue, Limit: limit, LeasedBy: "w1", Duration: time.Minute})
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	return jobs
}

func mustGet(t testing.TB, s *Store, id int64) *store.Job {
	t.Helper()
	j, err := s.Get(context.Background(), "default", id)
	if err != nil {
		t.Fatalf("Get %d: %v", id, err)
	}
	return j
}

func leaseOf(j *store.Job) store.Lease {
	return store.Lease{JobID: j.ID, Attempt: j.Attempt, Token: j.LeaseToken}
}
