package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var eventTests = []suiteTest{
	{"RecordGet", testEventsRecordGet},
	{"Repeat", testEventsRepeat},
	{"RepeatConcurrent", testEventsRepeatConcurrent},
	{"ManyCallers", testEventsManyCallers},
	{"AllOrNothing", testEventsAllOrNothing},
	{"List", testEventsList},
	{"DeleteBefore", testEventsDeleteBefore},
	{"BySource", testEventsBySource},
}

var deliveryTests = []suiteTest{
	{"RecordList", testDeliveriesRecordList},
	{"DeleteBefore", testDeliveriesDeleteBefore},
}

var definitionTests = []suiteTest{
	{"CRUD", testDefinitionsCRUD},
	{"Notify", testDefinitionsNotify},
}

// eventAt is a fixed event time, n minutes into a day in 2026.
func eventAt(n int) time.Time {
	return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute)
}

func cloudEvent(tenant, source, id, typ string, at time.Time) store.Event {
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":%q,"time":%q,"data":{"n":1}}`,
		id, source, typ, at.Format(time.RFC3339Nano))
	return store.Event{TenantID: tenant, Source: source, EventID: id, Type: typ, Time: at, Body: []byte(body)}
}

func (e *env) record(recs ...store.EventRecord) []store.RecordedEvent {
	e.t.Helper()
	out, err := e.s.RecordEvents(e.ctx(), recs)
	if err != nil {
		e.t.Fatalf("RecordEvents: %v", err)
	}
	if len(out) != len(recs) {
		e.t.Fatalf("RecordEvents answered %d results for %d events", len(out), len(recs))
	}
	return out
}

func testEventsRecordGet(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	ev := cloudEvent(tenantA, "/shop", "a-1", "order.placed", eventAt(0))
	ev.Subject = "order/7"
	job := params(tenantA, "orders", "fulfil")
	job.Args = []byte(`{"order":7}`)
	outcomes := []store.RuleOutcome{
		{RuleID: "rul_1", RuleName: "fulfil", Matched: true, Actions: []store.ActionOutcome{
			{Action: "enqueue", Job: 0}, {Action: "publish", Job: -1, Topic: "orders"},
		}},
		{RuleID: "rul_2", RuleName: "broken", Error: "filter: unknown name x", Actions: nil},
	}
	before := e.now()
	res := e.record(store.EventRecord{Event: ev, Jobs: []store.InsertParams{job}, Outcomes: outcomes})[0]
	after := e.now()
	if res.Existing || res.Event == nil || res.Event.ID == 0 || len(res.Jobs) != 1 || res.Jobs[0].Job == nil {
		t.Fatalf("RecordEvents = %+v, want a new event with one job", res)
	}
	within(t, "ReceivedAt", res.Event.ReceivedAt, before, after)
	j := res.Jobs[0].Job
	if j.Queue != "orders" || j.Kind != "fulfil" || string(j.Args) != `{"order":7}` || j.State != store.StateAvailable {
		t.Errorf("the event's job = %+v", j)
	}
	if _, err := e.s.Get(e.ctx(), tenantA, j.ID); err != nil {
		t.Errorf("Get(the event's job): %v", err)
	}
	e.waitInsert(tenantA, "orders")

	got, err := e.s.GetEvent(e.ctx(), tenantA, res.Event.ID)
	if err != nil {
		t.Fatalf("GetEvent: %v", err)
	}
	if got.ID != res.Event.ID || got.TenantID != tenantA || got.Source != "/shop" || got.EventID != "a-1" ||
		got.Type != "order.placed" || got.Subject != "order/7" || !got.Time.Equal(eventAt(0)) ||
		!got.ReceivedAt.Equal(res.Event.ReceivedAt) || string(got.Body) != string(ev.Body) {
		t.Errorf("GetEvent = %+v\nwant the recorded %+v", got, res.Event)
	}
	var dispatch []map[string]any
	if err := json.Unmarshal(got.Dispatch, &dispatch); err != nil {
		t.Fatalf("Dispatch %s: %v", got.Dispatch, err)
	}
	if len(dispatch) != 2 || dispatch[1]["error"] != "filter: unknown name x" {
		t.Fatalf("Dispatch = %s", got.Dispatch)
	}
	actions, _ := dispatch[0]["actions"].([]any)
	if len(actions) != 2 || actions[0].(map[string]any)["job_id"] != fmt.Sprint(j.ID) || actions[1].(map[string]any)["topic"] != "orders" {
		t.Errorf("Dispatch names the job %d and the topic: %s", j.ID, got.Dispatch)
	}
	if string(got.Dispatch) != string(res.Event.Dispatch) {
		t.Errorf("RecordEvents answered Dispatch %s, GetEvent %s", res.Event.Dispatch, got.Dispatch)
	}

	for _, c := range []struct {
		tenant string
		id     int64
	}{{tenantB, res.Event.ID}, {tenantA, unknownID}} {
		if _, err := e.s.GetEvent(e.ctx(), c.tenant, c.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetEvent(%s, %d) = %v, want ErrNotFound", c.tenant, c.id, err)
		}
	}
	if out, err := e.s.RecordEvents(e.ctx(), nil); err != nil || len(out) != 0 {
		t.Errorf("RecordEvents(nil) = %v, %v", out, err)
	}
}

func testEventsRepeat(t *testing.T, open opener) {
	e := newEnv(t, open)
	ev := cloudEvent(tenantA, "/shop", "a-1", "order.placed", eventAt(0))
	job := params(tenantA, "orders", "fulfil")
	first := e.record(store.EventRecord{Event: ev, Jobs: []store.InsertParams{job}})[0]

	// The same source and id again, with other contents: the stored one
	// answers, and no job is made. Within one call too; another source, or
	// another tenant, is another event.
	again := ev
	again.Type, again.Body = "order.changed", []byte(`{"other":true}`)
	res := e.record(
		store.EventRecord{Event: again, Jobs: []store.InsertParams{job}},
		store.EventRecord{Event: cloudEvent(tenantA, "/shop", "a-2", "order.placed", eventAt(1)), Jobs: []store.InsertParams{job}},
		store.EventRecord{Event: cloudEvent(tenantA, "/shop", "a-2", "order.placed", eventAt(1)), Jobs: []store.InsertParams{job}},
		store.EventRecord{Event: cloudEvent(tenantA, "/other", "a-1", "order.placed", eventAt(2))},
		store.EventRecord{Event: cloudEvent(tenantB, "/shop", "a-1", "order.placed", eventAt(3))},
	)
	if !res[0].Existing || res[0].Event.ID != first.Event.ID || res[0].Event.Type != "order.placed" ||
		string(res[0].Event.Body) != string(ev.Body) || res[0].Jobs != nil {
		t.Errorf("a repeat = %+v, want the first event (id %d), unchanged, no jobs", res[0], first.Event.ID)
	}
	if res[1].Existing || !res[2].Existing || res[2].Event.ID != res[1].Event.ID || len(res[1].Jobs) != 1 || res[2].Jobs != nil {
		t.Errorf("a repeat within one call: %+v then %+v", res[1], res[2])
	}
	if res[3].Existing || res[4].Existing {
		t.Errorf("another source or tenant counted as a repeat: %+v, %+v", res[3], res[4])
	}
	jobs, err := e.s.List(e.ctx(), store.ListParams{TenantID: tenantA, Queue: "orders"})
	if err != nil || len(jobs) != 2 {
		t.Errorf("jobs made = %d (%v), want 2: one per new event", len(jobs), err)
	}
}

func testEventsRepeatConcurrent(t *testing.T, open opener) {
	e := newEnv(t, open)
	const senders = 8
	ev := cloudEvent(tenantA, "/hooks/github", "delivery-1", "github.push", eventAt(0))
	job := params(tenantA, "ci", "build")
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh []int64
		ids   []int64
	)
	for range senders {
		wg.Go(func() {
			out, err := e.s.RecordEvents(e.ctx(), []store.EventRecord{{Event: ev, Jobs: []store.InsertParams{job}}})
			if err != nil {
				t.Errorf("RecordEvents: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids = append(ids, out[0].Event.ID)
			if !out[0].Existing {
				fresh = append(fresh, out[0].Event.ID)
			}
		})
	}
	wg.Wait()
	if len(fresh) != 1 || len(ids) != senders || slices.Min(ids) != slices.Max(ids) {
		t.Errorf("%d concurrent recordings of one event: new %v, ids %v; want one new, one id", senders, fresh, ids)
	}
	jobs, err := e.s.List(e.ctx(), store.ListParams{TenantID: tenantA, Queue: "ci"})
	if err != nil || len(jobs) != 1 {
		t.Errorf("jobs made = %d (%v), want 1", len(jobs), err)
	}
}

// testEventsManyCallers records from many callers at once, as webhook
// ingest does (a store may record them together): every event and job is
// its caller's, repeats are answered with the first, and a call that fails
// fails alone.
func testEventsManyCallers(t *testing.T, open opener) {
	e := newEnv(t, open)
	const callers = 48
	enqueue := []store.RuleOutcome{{RuleID: "rul_1", RuleName: "r", Matched: true,
		Actions: []store.ActionOutcome{{Action: "enqueue", Job: 0}}}}
	// Call i records event i, with a job saying so for even i, and for i
	// divisible by 3 also event i/3 (a repeat of another call's, or of
	// itself for i = 0). Call bad carries a job the schema refuses.
	const bad = 41
	recordOf := func(n int) store.EventRecord {
		r := store.EventRecord{Event: cloudEvent(tenantA, "/many", fmt.Sprintf("ev-%d", n), "t", eventAt(n))}
		if n%2 == 0 {
			j := params(tenantA, "many", "k")
			j.Args = []byte(fmt.Sprintf(`{"event":"ev-%d"}`, n))
			r.Jobs, r.Outcomes = []store.InsertParams{j}, enqueue
		}
		return r
	}
	results := make([][]store.RecordedEvent, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		recs := []store.EventRecord{recordOf(i)}
		if i%3 == 0 {
			recs = append(recs, recordOf(i/3))
		}
		if i == bad {
			recs[0].Jobs = []store.InsertParams{params(tenantA, "many", "k")}
			recs[0].Jobs[0].Priority = 9
		}
		wg.Go(func() { results[i], errs[i] = e.s.RecordEvents(e.ctx(), recs) })
	}
	wg.Wait()

	byEventID := map[string]*store.Event{} // the new events, by event id
	for i := range callers {
		if i == bad {
			if errs[i] == nil {
				t.Errorf("call %d, with a job of priority 9, succeeded", i)
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("call %d: %v", i, errs[i])
			continue
		}
		for k, r := range results[i] {
			want := fmt.Sprintf("ev-%d", i)
			if k == 1 {
				want = fmt.Sprintf("ev-%d", i/3)
			}
			if r.Event == nil || r.Event.EventID != want || r.Event.ID == 0 {
				t.Errorf("call %d, event %d = %+v, want %s", i, k, r.Event, want)
				continue
			}
			if r.Existing {
				continue
			}
			if prev := byEventID[want]; prev != nil {
				t.Errorf("%s recorded twice as new: ids %d and %d", want, prev.ID, r.Event.ID)
			}
			byEventID[want] = r.Event
			n := 0
			fmt.Sscanf(want, "ev-%d", &n)
			if wantJobs := 1 - n%2; len(r.Jobs) != wantJobs {
				t.Errorf("%s made %d jobs, want %d", want, len(r.Jobs), wantJobs)
			} else if wantJobs == 1 && !strings.Contains(string(r.Event.Dispatch), fmt.Sprintf(`"job_id":"%d"`, r.Jobs[0].Job.ID)) {
				t.Errorf("%s's dispatch %s does not name its job %d", want, r.Event.Dispatch, r.Jobs[0].Job.ID)
			}
		}
	}
	// Every event but call bad's is recorded once, as RecordEvents said, with
	// its own job.
	stored, err := e.s.ListEvents(e.ctx(), store.EventListParams{TenantID: tenantA, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != callers-1 {
		t.Errorf("%d events stored, want %d", len(stored), callers-1)
	}
	for _, ev := range stored {
		if ev.EventID == fmt.Sprintf("ev-%d", bad) {
			t.Errorf("the failed call's event was stored")
		} else if got := byEventID[ev.EventID]; got == nil || got.ID != ev.ID || string(got.Dispatch) != string(ev.Dispatch) {
			t.Errorf("stored %s (id %d, dispatch %s), answered %+v", ev.EventID, ev.ID, ev.Dispatch, got)
		}
	}
	jobs, err := e.s.List(e.ctx(), store.ListParams{TenantID: tenantA, Queue: "many", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != callers/2 {
		t.Errorf("%d jobs, want %d: one per even event", len(jobs), callers/2)
	}
	for _, j := range jobs {
		var args struct{ Event string }
		if err := json.Unmarshal(j.Args, &args); err != nil {
			t.Fatal(err)
		}
		ev := byEventID[args.Event]
		if ev == nil || !strings.Contains(string(ev.Dispatch), fmt.Sprintf(`"job_id":"%d"`, j.ID)) {
			t.Errorf("job %d of %s is not named by that event's dispatch (%+v)", j.ID, args.Event, ev)
		}
	}
}

func testEventsAllOrNothing(t *testing.T, open opener) {
	e := newEnv(t, open)
	bad := params(tenantA, "q", "k")
	bad.Priority = 9 // the schema refuses it
	_, err := e.s.RecordEvents(e.ctx(), []store.EventRecord{
		{Event: cloudEvent(tenantA, "/s", "1", "t", eventAt(0)), Jobs: []store.InsertParams{params(tenantA, "q", "k")}},
		{Event: cloudEvent(tenantA, "/s", "2", "t", eventAt(1)), Jobs: []store.InsertParams{bad}},
	})
	if err == nil {
		t.Fatal("RecordEvents with a job of priority 9 succeeded")
	}
	if es, err := e.s.ListEvents(e.ctx(), store.EventListParams{TenantID: tenantA}); err != nil || len(es) != 0 {
		t.Errorf("after a failed RecordEvents: %d events (%v), want none", len(es), err)
	}
	if jobs, err := e.s.List(e.ctx(), store.ListParams{TenantID: tenantA}); err != nil || len(jobs) != 0 {
		t.Errorf("after a failed RecordEvents: %d jobs (%v), want none", len(jobs), err)
	}
}

func eventIDs(es []*store.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.EventID
	}
	return out
}

func testEventsList(t *testing.T, open opener) {
	e := newEnv(t, open)
	mk := func(id, source, typ, subject string, minute int) store.EventRecord {
		ev := cloudEvent(tenantA, source, id, typ, eventAt(minute))
		ev.Subject = subject
		return store.EventRecord{Event: ev}
	}
	e.record(mk("a", "/s1", "image.uploaded", "avatars/1", 0), mk("b", "/s1", "image.deleted", "", 1),
		mk("c", "/s2", "image.uploaded", "avatars/2", 2), mk("d", "/s2", "video.uploaded", "avatars/1", 3))
	e.record(store.EventRecord{Event: cloudEvent(tenantB, "/s1", "z", "image.uploaded", eventAt(0))})
	for _, tc := range []struct {
		name string
		p    store.EventListParams
		want []string
	}{
		{"all", store.EventListParams{}, []string{"d", "c", "b", "a"}},
		{"type", store.EventListParams{Type: "image.uploaded"}, []string{"c", "a"}},
		{"source", store.EventListParams{Source: "/s1"}, []string{"b", "a"}},
		{"subject", store.EventListParams{Subject: "avatars/1"}, []string{"d", "a"}},
		{"since", store.EventListParams{Since: eventAt(2)}, []string{"d", "c"}},
		{"until", store.EventListParams{Until: eventAt(2)}, []string{"b", "a"}},
		{"limit", store.EventListParams{Limit: 3}, []string{"d", "c", "b"}},
	} {
		tc.p.TenantID = tenantA
		es, err := e.s.ListEvents(e.ctx(), tc.p)
		if err != nil {
			t.Fatalf("%s: ListEvents: %v", tc.name, err)
		}
		if got := eventIDs(es); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ListEvents = %q, want %q", tc.name, got, tc.want)
		}
	}
	// Pages continue below the last id.
	page, _ := e.s.ListEvents(e.ctx(), store.EventListParams{TenantID: tenantA, Limit: 2})
	rest, err := e.s.ListEvents(e.ctx(), store.EventListParams{TenantID: tenantA, Before: page[1].ID})
	if err != nil || !slices.Equal(eventIDs(rest), []string{"b", "a"}) {
		t.Errorf("the second page = %q (%v), want b, a", eventIDs(rest), err)
	}
}

func testEventsDeleteBefore(t *testing.T, open opener) {
	e := newEnv(t, open)
	e.record(store.EventRecord{Event: cloudEvent(tenantA, "/s", "old-1", "t", eventAt(0))},
		store.EventRecord{Event: cloudEvent(tenantA, "/s", "old-2", "t", eventAt(0))})
	cut := e.now()
	e.waitPast(cut)
	e.record(store.EventRecord{Event: cloudEvent(tenantA, "/s", "new", "t", eventAt(0))})
	n, err := e.s.DeleteEventsBefore(e.ctx(), cut.Add(time.Microsecond), 1)
	if err != nil || n != 1 {
		t.Fatalf("DeleteEventsBefore(limit 1) = %d, %v; want 1", n, err)
	}
	if n, err = e.s.DeleteEventsBefore(e.ctx(), cut.Add(time.Microsecond), 10); err != nil || n != 1 {
		t.Fatalf("DeleteEventsBefore(limit 10) = %d, %v; want the other old one", n, err)
	}
	es, err := e.s.ListEvents(e.ctx(), store.EventListParams{TenantID: tenantA})
	if err != nil || !slices.Equal(eventIDs(es), []string{"new"}) {
		t.Errorf("left after retention: %q (%v), want the new one", eventIDs(es), err)
	}
	// A deleted event's source and id may come again, as a new event.
	if res := e.record(store.EventRecord{Event: cloudEvent(tenantA, "/s", "old-1", "t", eventAt(0))}); res[0].Existing {
		t.Errorf("an event deleted by retention still counts as recorded")
	}
}

func rule(tenant, id, name, spec string) store.Definition {
	return store.Definition{Kind: store.KindRule, ID: id, TenantID: tenant, Name: name, Spec: []byte(spec)}
}

func testDefinitionsCRUD(t *testing.T, open opener) {
	e := newEnv(t, open)
	before := e.now()
	r, err := e.s.CreateDefinition(e.ctx(), rule(tenantA, "rul_b", "resize", `{"types":["image.*"]}`))
	after := e.now()
	if err != nil {
		t.Fatalf("CreateDefinition: %v", err)
	}
	within(t, "CreatedAt", r.CreatedAt, before, after)
	if !r.UpdatedAt.Equal(r.CreatedAt) || r.ID != "rul_b" || r.Name != "resize" || r.Kind != store.KindRule {
		t.Errorf("CreateDefinition = %+v", r)
	}
	for what, d := range map[string]store.Definition{
		"a taken name":                rule(tenantA, "rul_c", "resize", `{}`),
		"a taken id":                  rule(tenantB, "rul_b", "other", `{}`),
		"a taken id, of another kind": {Kind: store.KindSource, ID: "rul_b", TenantID: tenantA, Name: "s", Spec: []byte(`{}`)},
	} {
		if _, err := e.s.CreateDefinition(e.ctx(), d); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateDefinition with %s = %v, want ErrConflict", what, err)
		}
	}
	for what, d := range map[string]store.Definition{
		"another tenant's name":         rule(tenantB, "rul_z", "resize", `{}`),
		"another kind of the same name": {Kind: store.KindSource, ID: "src_1", TenantID: tenantA, Name: "resize", Spec: []byte(`{"scheme":"github"}`)},
		"a second rule":                 rule(tenantA, "rul_a", "alert", `{"types":["job.dead"]}`),
	} {
		if _, err := e.s.CreateDefinition(e.ctx(), d); err != nil {
			t.Errorf("CreateDefinition of %s: %v", what, err)
		}
	}

	got, err := e.s.GetDefinition(e.ctx(), store.KindRule, tenantA, "rul_b")
	if err != nil || got.Name != "resize" || got.TenantID != tenantA {
		t.Errorf("GetDefinition = %+v, %v", got, err)
	}
	var spec map[string]any
	if err := json.Unmarshal(got.Spec, &spec); err != nil || spec["types"] == nil {
		t.Errorf("the stored spec %s does not read back: %v", got.Spec, err)
	}
	if src, err := e.s.GetDefinition(e.ctx(), store.KindSource, "", "src_1"); err != nil || src.TenantID != tenantA {
		t.Errorf("GetDefinition of any tenant = %+v, %v; want tenant A's source", src, err)
	}
	for what, c := range map[string][3]string{
		"another tenant's": {store.KindRule, tenantB, "rul_b"},
		"another kind's":   {store.KindSource, tenantA, "rul_b"},
		"an unknown":       {store.KindRule, tenantA, "rul_nope"},
	} {
		if _, err := e.s.GetDefinition(e.ctx(), c[0], c[1], c[2]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetDefinition of %s = %v, want ErrNotFound", what, err)
		}
	}

	all, err := e.s.ListDefinitions(e.ctx(), store.KindRule, tenantA, "", 0)
	if err != nil || len(all) != 2 || all[0].ID != "rul_a" || all[1].ID != "rul_b" {
		t.Fatalf("ListDefinitions = %+v, %v; want rul_a, rul_b", all, err)
	}
	if page, err := e.s.ListDefinitions(e.ctx(), store.KindRule, tenantA, "rul_a", 1); err != nil || len(page) != 1 || page[0].ID != "rul_b" {
		t.Errorf("ListDefinitions after rul_a = %+v, %v", page, err)
	}

	e.waitPast(r.UpdatedAt)
	up, err := e.s.UpdateDefinition(e.ctx(), rule(tenantA, "rul_b", "thumbnails", `{"types":["image.uploaded"]}`))
	if err != nil || up.Name != "thumbnails" || !up.UpdatedAt.After(r.UpdatedAt) || !up.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("UpdateDefinition = %+v, %v", up, err)
	}
	if r.Version != 1 || up.Version != 2 {
		t.Errorf("versions: created %d, updated %d; want 1, 2", r.Version, up.Version)
	}
	// A read-modify-write that lost a race fails, and changes nothing.
	stale := rule(tenantA, "rul_b", "stale", `{"types":["x"]}`)
	stale.Version = 1
	if _, err := e.s.UpdateDefinition(e.ctx(), stale); !errors.Is(err, store.ErrChanged) {
		t.Errorf("UpdateDefinition of version 1 after an update = %v, want ErrChanged", err)
	}
	fresh := rule(tenantA, "rul_b", "thumbnails", `{"types":["image.*"]}`)
	fresh.Version = 2
	if got, err := e.s.UpdateDefinition(e.ctx(), fresh); err != nil || got.Version != 3 || string(got.Spec) == `{"types":["x"]}` {
		t.Errorf("UpdateDefinition of the current version = %+v, %v", got, err)
	}
	fresh.ID = "rul_nope"
	if _, err := e.s.UpdateDefinition(e.ctx(), fresh); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateDefinition of an unknown id with a version = %v, want ErrNotFound", err)
	}
	if _, err := e.s.UpdateDefinition(e.ctx(), rule(tenantA, "rul_b", "alert", `{}`)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("UpdateDefinition to a taken name = %v, want ErrConflict", err)
	}
	if _, err := e.s.UpdateDefinition(e.ctx(), rule(tenantB, "rul_b", "x", `{}`)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateDefinition of another tenant's = %v, want ErrNotFound", err)
	}
	if err := e.s.DeleteDefinition(e.ctx(), store.KindRule, tenantB, "rul_b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteDefinition of another tenant's = %v, want ErrNotFound", err)
	}
	if err := e.s.DeleteDefinition(e.ctx(), store.KindSource, tenantA, "rul_b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteDefinition of another kind's = %v, want ErrNotFound", err)
	}
	if err := e.s.DeleteDefinition(e.ctx(), store.KindRule, tenantA, "rul_b"); err != nil {
		t.Fatalf("DeleteDefinition: %v", err)
	}
	if _, err := e.s.GetDefinition(e.ctx(), store.KindRule, tenantA, "rul_b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetDefinition after DeleteDefinition = %v, want ErrNotFound", err)
	}
}

func testDefinitionsNotify(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	isDefs := func(n store.Notification) bool { return n.Kind == store.NotifyDefinitions && n.TenantID == tenantB }
	if _, err := e.s.CreateDefinition(e.ctx(), rule(tenantB, "rul_1", "r", `{}`)); err != nil {
		t.Fatal(err)
	}
	e.waitFor("definitions", isDefs)
	e.drain()
	if _, err := e.s.UpdateDefinition(e.ctx(), rule(tenantB, "rul_1", "r2", `{}`)); err != nil {
		t.Fatal(err)
	}
	e.waitFor("definitions", isDefs)
	e.drain()
	if err := e.s.DeleteDefinition(e.ctx(), store.KindRule, tenantB, "rul_1"); err != nil {
		t.Fatal(err)
	}
	e.waitFor("definitions", isDefs)
}

func testEventsBySource(t *testing.T, open opener) {
	e := newEnv(t, open)
	ev := cloudEvent(tenantA, "/shop", "a-1", "order.placed", eventAt(0))
	ev.Subject = "order/7"
	res := e.record(store.EventRecord{Event: ev}, store.EventRecord{Event: cloudEvent(tenantA, "/shop", "a-2", "t", eventAt(1))})[0]
	got, err := e.s.EventBySource(e.ctx(), tenantA, "/shop", "a-1")
	if err != nil {
		t.Fatalf("EventBySource: %v", err)
	}
	if got.ID != res.Event.ID || got.TenantID != tenantA || got.Source != "/shop" || got.EventID != "a-1" ||
		got.Type != "order.placed" || got.Subject != "order/7" || !got.Time.Equal(eventAt(0)) ||
		!got.ReceivedAt.Equal(res.Event.ReceivedAt) || string(got.Body) != string(ev.Body) ||
		string(got.Dispatch) != string(res.Event.Dispatch) {
		t.Errorf("EventBySource = %+v\nwant the recorded %+v", got, res.Event)
	}
	for what, c := range map[string][3]string{
		"another tenant's": {tenantB, "/shop", "a-1"},
		"an unknown id":    {tenantA, "/shop", "a-3"},
		"another source":   {tenantA, "/other", "a-1"},
	} {
		if _, err := e.s.EventBySource(e.ctx(), c[0], c[1], c[2]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EventBySource of %s = %v, want ErrNotFound", what, err)
		}
	}
}

func (e *env) recordAttempt(a store.DeliveryAttempt) *store.DeliveryAttempt {
	e.t.Helper()
	got, err := e.s.RecordDeliveryAttempt(e.ctx(), a)
	if err != nil {
		e.t.Fatalf("RecordDeliveryAttempt: %v", err)
	}
	if got.ID == 0 {
		e.t.Fatalf("RecordDeliveryAttempt set no ID: %+v", got)
	}
	return got
}

func attempt(tenant, endpoint string, event int64, n int) store.DeliveryAttempt {
	return store.DeliveryAttempt{TenantID: tenant, EndpointID: endpoint, EventID: event, JobID: 1000 + event, Attempt: n, Status: 200}
}

func attemptIDs(as []*store.DeliveryAttempt) []int64 {
	out := make([]int64, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

// sameAttempt reports how got differs from want, "" if it does not.
func sameAttempt(got, want *store.DeliveryAttempt) string {
	switch {
	case got.ID != want.ID, got.TenantID != want.TenantID, got.EndpointID != want.EndpointID,
		got.EventID != want.EventID, got.JobID != want.JobID, got.Attempt != want.Attempt:
		return "ids"
	case !got.At.Equal(want.At):
		return "At"
	case got.Status != want.Status:
		return "Status"
	case got.Latency != want.Latency:
		return "Latency"
	case !jsonEqual(got.ResponseHeaders, want.ResponseHeaders):
		return "ResponseHeaders"
	case got.ResponseBody != want.ResponseBody:
		return "ResponseBody"
	case got.Error != want.Error:
		return "Error"
	}
	return ""
}

func testDeliveriesRecordList(t *testing.T, open opener) {
	e := newEnv(t, open)

	// Every field round-trips: At as given (microseconds), Latency to the
	// microsecond, the headers as JSON of the same value.
	full := attempt(tenantA, "end_1", 7, 2)
	full.At = time.Date(2025, 11, 3, 8, 30, 15, 123456000, time.UTC)
	full.Status = 503
	full.Latency = 1234567891 * time.Nanosecond
	full.ResponseHeaders = []byte(`{ "Content-Type": ["text/plain"], "X-Many": ["a", "b"] }`)
	full.ResponseBody = "unavailable \u00e9\n"
	full.Error = "http 503"
	got := e.recordAttempt(full)
	want := full
	want.ID, want.Latency = got.ID, 1234567*time.Microsecond
	if d := sameAttempt(got, &want); d != "" {
		t.Errorf("RecordDeliveryAttempt = %+v\nwant %+v (%s differs)", got, want, d)
	}

	// A zero At is the database clock's; no headers are {}; no response is
	// status 0.
	bare := attempt(tenantA, "end_1", 7, 3)
	bare.Status, bare.Error = 0, "dial tcp: connection refused"
	before := e.now()
	second := e.recordAttempt(bare)
	after := e.now()
	within(t, "a recorded At", second.At, before, after)
	if second.ID <= got.ID || !jsonEqual(second.ResponseHeaders, []byte(`{}`)) || second.Status != 0 ||
		second.Error != bare.Error || second.Latency != 0 || second.ResponseBody != "" {
		t.Errorf("RecordDeliveryAttempt without response = %+v", second)
	}

	list, err := e.s.ListDeliveryAttempts(e.ctx(), store.DeliveryAttemptListParams{TenantID: tenantA})
	if err != nil || len(list) != 2 {
		t.Fatalf("ListDeliveryAttempts = %d attempts (%v), want 2", len(list), err)
	}
	if d := sameAttempt(list[1], got); d != "" {
		t.Errorf("listed %+v\nwant the recorded %+v (%s differs)", list[1], got, d)
	}
	if d := sameAttempt(list[0], second); d != "" {
		t.Errorf("listed %+v\nwant the recorded %+v (%s differs)", list[0], second, d)
	}

	// More: another endpoint, another event, another tenant.
	a3 := e.recordAttempt(attempt(tenantA, "end_2", 7, 1))
	a4 := e.recordAttempt(attempt(tenantA, "end_1", 8, 1))
	a5 := e.recordAttempt(attempt(tenantA, "end_2", 8, 1))
	e.recordAttempt(attempt(tenantB, "end_1", 7, 1))
	a1, a2 := got, second
	for _, tc := range []struct {
		name string
		p    store.DeliveryAttemptListParams
		want []int64
	}{
		{"all", store.DeliveryAttemptListParams{}, []int64{a5.ID, a4.ID, a3.ID, a2.ID, a1.ID}},
		{"endpoint", store.DeliveryAttemptListParams{EndpointID: "end_1"}, []int64{a4.ID, a2.ID, a1.ID}},
		{"event", store.DeliveryAttemptListParams{EventID: 8}, []int64{a5.ID, a4.ID}},
		{"endpoint and event", store.DeliveryAttemptListParams{EndpointID: "end_2", EventID: 7}, []int64{a3.ID}},
		{"limit", store.DeliveryAttemptListParams{Limit: 2}, []int64{a5.ID, a4.ID}},
		{"before", store.DeliveryAttemptListParams{Before: a4.ID}, []int64{a3.ID, a2.ID, a1.ID}},
		{"before, limit", store.DeliveryAttemptListParams{Before: a4.ID, Limit: 2}, []int64{a3.ID, a2.ID}},
		{"endpoint, before", store.DeliveryAttemptListParams{EndpointID: "end_1", Before: a2.ID}, []int64{a1.ID}},
		{"unknown endpoint", store.DeliveryAttemptListParams{EndpointID: "end_9"}, []int64{}},
	} {
		tc.p.TenantID = tenantA
		as, err := e.s.ListDeliveryAttempts(e.ctx(), tc.p)
		if err != nil {
			t.Fatalf("%s: ListDeliveryAttempts: %v", tc.name, err)
		}
		if got := attemptIDs(as); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ListDeliveryAttempts = %v, want %v", tc.name, got, tc.want)
		}
	}
	if as, err := e.s.ListDeliveryAttempts(e.ctx(), store.DeliveryAttemptListParams{TenantID: tenantB}); err != nil ||
		len(as) != 1 || as[0].TenantID != tenantB {
		t.Errorf("tenant B's attempts = %+v (%v), want its one", as, err)
	}
	if as, err := e.s.ListDeliveryAttempts(e.ctx(), store.DeliveryAttemptListParams{TenantID: "ten_nobody"}); err != nil || as == nil || len(as) != 0 {
		t.Errorf("an unknown tenant's attempts = %#v (%v), want an empty list", as, err)
	}
}

func testDeliveriesDeleteBefore(t *testing.T, open opener) {
	e := newEnv(t, open)
	oldest := attempt(tenantA, "end_1", 1, 1)
	oldest.At = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	a1 := e.recordAttempt(attempt(tenantA, "end_1", 1, 2))
	a0 := e.recordAttempt(oldest) // recorded later, made earlier
	cut := e.now()
	e.waitPast(cut)
	a2 := e.recordAttempt(attempt(tenantB, "end_1", 2, 1))
	n, err := e.s.DeleteDeliveryAttemptsBefore(e.ctx(), cut.Add(time.Microsecond), 1)
	if err != nil || n != 1 {
		t.Fatalf("DeleteDeliveryAttemptsBefore(limit 1) = %d, %v; want 1", n, err)
	}
	left, err := e.s.ListDeliveryAttempts(e.ctx(), store.DeliveryAttemptListParams{TenantID: tenantA})
	if err != nil || !slices.Equal(attemptIDs(left), []int64{a1.ID}) {
		t.Errorf("after deleting one: %v (%v), want %d left: the oldest (%d) goes first", attemptIDs(left), err, a1.ID, a0.ID)
	}
	if n, err = e.s.DeleteDeliveryAttemptsBefore(e.ctx(), cut.Add(time.Microsecond), 10); err != nil || n != 1 {
		t.Fatalf("DeleteDeliveryAttemptsBefore(limit 10) = %d, %v; want the other old one", n, err)
	}
	if left, err = e.s.ListDeliveryAttempts(e.ctx(), store.DeliveryAttemptListParams{TenantID: tenantA}); err != nil || len(left) != 0 {
		t.Errorf("tenant A's attempts after retention: %v (%v), want none", attemptIDs(left), err)
	}
	if left, err = e.s.ListDeliveryAttempts(e.ctx(), store.DeliveryAttemptListParams{TenantID: tenantB}); err != nil ||
		!slices.Equal(attemptIDs(left), []int64{a2.ID}) {
		t.Errorf("left after retention: %v (%v), want the new one, %d", attemptIDs(left), err, a2.ID)
	}
}
