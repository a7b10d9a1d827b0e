package postgres

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// holdFlushes takes every flush slot, so that inserts queue in the
// combiner; the returned func lets one flush run, which takes them all.
func holdFlushes(s *Store) (release func()) {
	for range combinedFlushes {
		s.combiner.slots <- struct{}{}
	}
	return func() { <-s.combiner.slots }
}

func waitPending(t *testing.T, s *Store, n int) {
	t.Helper()
	testdb.Poll(t, waitTimeout, strconv.Itoa(n)+" queued inserts", func() bool {
		s.combiner.mu.Lock()
		defer s.combiner.mu.Unlock()
		return len(s.combiner.pending) == n
	})
}

// Queued inserts go in together; each caller gets exactly its own jobs, and
// a bad row fails only its own caller's insert.
func TestCombinedInserts(t *testing.T) {
	t.Parallel()
	s := openStore(t, testdb.PostgresURL(t))
	release := holdFlushes(s)
	const callers = 12
	res := make([][]store.InsertResult, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			jobs := make([]store.InsertParams, 1+i%3)
			for k := range jobs {
				jobs[k] = job("q" + strconv.Itoa(i))
				jobs[k].Args = []byte(`{"caller": ` + strconv.Itoa(i) + `, "row": ` + strconv.Itoa(k) + `}`)
			}
			if i == 5 {
				jobs[0].Priority = 9 // breaks the CHECK constraint
			}
			res[i], errs[i] = s.Insert(context.Background(), jobs)
		})
	}
	waitPending(t, s, callers)
	release()
	wg.Wait()
	for range combinedFlushes - 1 {
		<-s.combiner.slots
	}
	seen := map[int64]bool{}
	for i := range callers {
		if i == 5 {
			if errs[i] == nil {
				t.Errorf("the caller with a bad row succeeded")
			}
			continue
		}
		if errs[i] != nil || len(res[i]) != 1+i%3 {
			t.Fatalf("caller %d: %d results, %v", i, len(res[i]), errs[i])
		}
		for k, r := range res[i] {
			got, err := s.Get(t.Context(), "default", r.Job.ID)
			if err != nil || got.Queue != "q"+strconv.Itoa(i) || seen[r.Job.ID] ||
				string(got.Args) != `{"row": `+strconv.Itoa(k)+`, "caller": `+strconv.Itoa(i)+`}` {
				t.Fatalf("caller %d row %d: job %d is %+v (%v)", i, k, r.Job.ID, got, err)
			}
			seen[r.Job.ID] = true
		}
	}
	if jobs, err := s.List(t.Context(), store.ListParams{TenantID: "default", Queue: "q5"}); err != nil || len(jobs) != 0 {
		t.Errorf("the failed caller's jobs: %d, %v", len(jobs), err)
	}
}

// A caller whose ctx ends while its insert is still queued withdraws it.
func TestCombinedInsertWithdrawn(t *testing.T) {
	t.Parallel()
	s := openStore(t, testdb.PostgresURL(t))
	release := holdFlushes(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Insert(ctx, []store.InsertParams{job("gone")})
		done <- err
	}()
	waitPending(t, s, 1)
	cancel()
	if err := testdb.Receive(t, done, "the withdrawn insert"); err == nil {
		t.Fatalf("withdrawn insert succeeded")
	}
	release()
	release()
	if jobs, err := s.List(t.Context(), store.ListParams{TenantID: "default", Queue: "gone"}); err != nil || len(jobs) != 0 {
		t.Errorf("withdrawn insert left %d jobs, %v", len(jobs), err)
	}
}
