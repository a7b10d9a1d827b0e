package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

func eventRecord(id string, jobs int) store.EventRecord {
	r := store.EventRecord{Event: store.Event{TenantID: "default", Source: "/s", EventID: id, Type: "t",
		Time: time.Unix(1700000000, 0), Body: []byte(`{"id":"` + id + `"}`)}}
	for k := range jobs {
		j := job("q", "k")
		j.Args = []byte(fmt.Sprintf(`{"event":%q,"n":%d}`, id, k))
		r.Jobs = append(r.Jobs, j)
		r.Outcomes = append(r.Outcomes, store.RuleOutcome{RuleID: "rul_1", RuleName: "r", Matched: true,
			Actions: []store.ActionOutcome{{Action: "enqueue", Job: k}}})
	}
	return r
}

// Calls that wait for the writer together are recorded by one op and one
// commit. A repeat among them (here of an event of the same batch) sends
// the op round again looking each event up, and a call that fails
// (a job the schema refuses) is then recorded alone, failing alone.
func TestRecordEventsMerged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		repeat  bool
		failing bool
		// Commits, the blocking op's included: at least, at most.
		commits [2]int64
	}{
		{"new", false, false, [2]int64{2, 2}},
		{"repeat", true, false, [2]int64{2, 2}}, // the merged op is undone, then runs again
		// Then each call alone: the two that succeed commit, together or
		// not, as they reach the writer.
		{"failing", true, true, [2]int64{2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := openTest(t)
				release, blocked := blockWriter(t, s)
				before := s.w.commits.Load()

				calls := [][]store.EventRecord{
					{eventRecord("a", 1), eventRecord("b", 0)},
					{eventRecord("c", 2)},
					{eventRecord("d", 0)},
				}
				if tc.repeat {
					calls[2] = append(calls[2], eventRecord("a", 1))
				}
				if tc.failing {
					calls[1][0].Jobs[1].Priority = 9
				}
				out := make([][]store.RecordedEvent, len(calls))
				errs := make([]error, len(calls))
				var wg sync.WaitGroup
				for i, recs := range calls {
					wg.Go(func() { out[i], errs[i] = s.RecordEvents(context.Background(), recs) })
				}
				synctest.Wait() // every call is now pending
				close(release)
				wg.Wait()
				if err := <-blocked; err != nil {
					t.Fatal(err)
				}
				if got := s.w.commits.Load() - before; got < tc.commits[0] || got > tc.commits[1] {
					t.Errorf("%d commits, want %d to %d", got, tc.commits[0], tc.commits[1])
				}

				if tc.failing {
					if errs[1] == nil {
						t.Errorf("the call with a job of priority 9 succeeded")
					}
					errs[1], out[1] = nil, nil
				}
				for i, err := range errs {
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
				}
				stored := map[string]int64{}
				for i, rs := range out {
					for k, r := range rs {
						e := r.Event
						if e.EventID != calls[i][k].Event.EventID {
							t.Fatalf("call %d event %d answered %s", i, k, e.EventID)
						}
						if r.Existing {
							continue
						}
						stored[e.EventID] = e.ID
						got, err := s.GetEvent(context.Background(), "default", e.ID)
						if err != nil || got.EventID != e.EventID || string(got.Dispatch) != string(e.Dispatch) {
							t.Fatalf("event %d is %+v (%v), answered %+v", e.ID, got, err, e)
						}
						for n, j := range r.Jobs {
							jg := mustGet(t, s, j.Job.ID)
							if want := fmt.Sprintf(`{"event":%q,"n":%d}`, e.EventID, n); string(jg.Args) != want {
								t.Errorf("%s's job %d holds %s, want %s", e.EventID, j.Job.ID, jg.Args, want)
							}
							if !strings.Contains(string(e.Dispatch), fmt.Sprintf(`"job_id":"%d"`, j.Job.ID)) {
								t.Errorf("%s's dispatch %s does not name job %d", e.EventID, e.Dispatch, j.Job.ID)
							}
						}
					}
				}
				if tc.repeat {
					// Whichever call came first recorded a; the other is
					// answered with it.
					first, again := out[0][0], out[2][1]
					if first.Existing {
						first, again = again, first
					}
					if first.Existing || !again.Existing || again.Event.ID != first.Event.ID || again.Jobs != nil {
						t.Errorf("a twice = %+v and %+v, want one new, one existing with the same id and no jobs", first, again)
					}
				}
				want := 4
				if tc.failing {
					want = 3 // not c
				}
				if len(stored) != want {
					t.Errorf("recorded %v, want %d events", stored, want)
				}
				jobs, err := s.List(context.Background(), store.ListParams{TenantID: "default", Queue: "q"})
				if wantJobs := 1 + 2*len(out[1]); err != nil || len(jobs) != wantJobs {
					t.Errorf("%d jobs (%v), want %d", len(jobs), err, wantJobs)
				}
			})
		})
	}
}

// Calls waiting together are recorded by as many ops as keep each within
// maxMergedEvents events.
func TestRecordEventsMergeBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		release, blocked := blockWriter(t, s)
		before := s.w.commits.Load()
		const calls, each = 3, maxMergedEvents / 2
		var wg sync.WaitGroup
		for i := range calls {
			recs := make([]store.EventRecord, each)
			for k := range recs {
				recs[k] = eventRecord(fmt.Sprintf("%d-%d", i, k), 0)
			}
			wg.Go(func() {
				if _, err := s.RecordEvents(context.Background(), recs); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		<-blocked
		// The blocking op's commit, then two calls' events, then the third's.
		if got := s.w.commits.Load() - before; got != 3 {
			t.Errorf("%d commits, want 3", got)
		}
		es, err := s.ListEvents(context.Background(), store.EventListParams{TenantID: "default", Limit: 2 * calls * each})
		if err != nil || len(es) != calls*each {
			t.Errorf("%d events recorded (%v), want %d", len(es), err, calls*each)
		}
	})
}

// A caller that gives up while its call still waits for the writer takes it
// back: nothing of it is written.
func TestRecordEventsWithdrawn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		release, blocked := blockWriter(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err = s.RecordEvents(ctx, []store.EventRecord{eventRecord("gone", 1)})
		}()
		synctest.Wait()
		cancel()
		<-done
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RecordEvents after cancel = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-blocked; err != nil {
			t.Fatal(err)
		}
		// The flush op it started finds nothing to do; a later call works.
		if _, err := s.RecordEvents(context.Background(), []store.EventRecord{eventRecord("kept", 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.EventBySource(context.Background(), "default", "/s", "gone"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the withdrawn event: %v, want ErrNotFound", err)
		}
		if jobs, err := s.List(context.Background(), store.ListParams{TenantID: "default", Queue: "q"}); err != nil || len(jobs) != 0 {
			t.Errorf("the withdrawn event's job: %d jobs (%v)", len(jobs), err)
		}
	})
}

// Calls pending when the store closes are answered, by a recording or by
// ErrClosed, never left waiting.
func TestRecordEventsClosing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := openTest(t)
		release, blocked := blockWriter(t, s)
		errs := make(chan error, 3)
		for i := range 3 {
			go func() {
				_, err := s.RecordEvents(context.Background(), []store.EventRecord{eventRecord(fmt.Sprint(i), 1)})
				errs <- err
			}()
		}
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		close(release)
		<-blocked
		for range 3 {
			if err := <-errs; err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("RecordEvents while closing = %v, want success or ErrClosed", err)
			}
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	})
}
