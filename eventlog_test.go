package switchyard_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

type resizeArgs struct {
	URL   string `json:"url"`
	Owner string `json:"owner"`
}

func (resizeArgs) Kind() string { return "resize" }

func upload(id string, size int) switchyard.CloudEvent {
	return switchyard.CloudEvent{
		SpecVersion: "1.0", ID: id, Source: "/uploads", Type: "image.uploaded", Subject: "avatars/7",
		Data: json.RawMessage(`{"url":"https://cdn.example/` + id + `.png","size":` + strings.Repeat("9", size) + `,"owner":{"id":"u7"}}`),
	}
}

func createRule(t *testing.T, c *switchyard.Client, name string, spec switchyard.RuleSpec) *switchyard.Rule {
	t.Helper()
	r, err := c.CreateRule(t.Context(), name, spec)
	if err != nil {
		t.Fatalf("CreateRule(%s): %v", name, err)
	}
	return r
}

// An event matched by a rule is recorded with the job it enqueues, in one
// transaction; a repeat of the event is answered with the first and makes
// nothing; the event goes to its topics.
func TestSendEventsRoutesThroughRules(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[resizeArgs]) error { return nil })
		ctx := t.Context()
		createRule(t, c, "resize", switchyard.RuleSpec{
			Types: []string{"image.*"}, Enabled: true, Filter: `data.size > 1000`,
			Actions: []switchyard.RuleAction{
				{Type: switchyard.RuleEnqueue, Queue: "images", Kind: "resize", Args: `{"url": data.url, "owner": data.owner.id}`},
				{Type: switchyard.RulePublish, Topic: "uploads"},
			},
		})
		createRule(t, c, "off", switchyard.RuleSpec{Types: []string{"*"}, Enabled: false,
			Actions: []switchyard.RuleAction{{Type: switchyard.RulePublish, Topic: "never"}}})
		topic := subscribe(t, c, "uploads")
		typed := subscribe(t, c, switchyard.EventTopic("image.uploaded"))

		sent, err := c.SendEvents(ctx, upload("big", 4), upload("small", 2))
		if err != nil {
			t.Fatalf("SendEvents: %v", err)
		}
		big, small := sent[0].Event, sent[1].Event
		if sent[0].Existing || len(big.Dispatch) != 1 || !big.Dispatch[0].Matched || len(big.Dispatch[0].Actions) != 2 {
			t.Fatalf("the big upload's dispatch = %+v", big.Dispatch)
		}
		jobID := big.Dispatch[0].Actions[0].JobID
		job := getJob(t, c, jobID)
		if job.Queue != "images" || job.Kind != "resize" || !jsonEqual(job.Args, `{"url":"https://cdn.example/big.png","owner":"u7"}`) {
			t.Errorf("the rule's job = %+v", job)
		}
		if len(small.Dispatch) != 1 || small.Dispatch[0].Matched || len(small.Dispatch[0].Actions) != 0 {
			t.Errorf("the small upload (filter false) dispatch = %+v", small.Dispatch)
		}
		if m := nextMessage(t, topic, "the rule's publish"); m.Type != "image.uploaded" || !strings.Contains(string(m.Data), `"id":"big"`) {
			t.Errorf("uploads got %s %s", m.Type, m.Data)
		}
		for _, id := range []string{"big", "small"} {
			if m := nextMessage(t, typed, "events.image.uploaded"); !strings.Contains(string(m.Data), `"id":"`+id+`"`) {
				t.Errorf("events.image.uploaded got %s, want %s", m.Data, id)
			}
		}

		again, err := c.SendEvents(ctx, upload("big", 4))
		if err != nil || !again[0].Existing || again[0].Event.ID != big.ID {
			t.Fatalf("a repeat = %+v, %v; want the first (%s)", again, err, big.ID)
		}
		jobs, _, err := c.ListJobs(ctx, switchyard.ListParams{Queue: "images"})
		if err != nil || len(jobs) != 1 {
			t.Errorf("jobs after a repeat = %d (%v), want 1", len(jobs), err)
		}

		got, err := c.GetEvent(ctx, big.ID)
		if err != nil || got.CloudEvent.ID != "big" || got.CloudEvent.Subject != "avatars/7" || got.Dispatch[0].Actions[0].JobID != jobID {
			t.Errorf("GetEvent = %+v, %v", got, err)
		}
		if _, err := c.ForTenant("other").GetEvent(ctx, big.ID); !errors.Is(err, switchyard.ErrNotFound) {
			t.Errorf("another tenant's GetEvent = %v, want ErrNotFound", err)
		}
		list, _, err := c.ListEvents(ctx, switchyard.EventFilter{Type: "image.uploaded"})
		if err != nil || len(list) != 2 || list[0].ID != small.ID {
			t.Errorf("ListEvents = %d events (%v), want small then big", len(list), err)
		}
	})
}

// A rule that fails on an event is recorded on it; the event is kept, and
// the other rules and actions still run.
func TestSendEventsRecordsRuleErrors(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		c := open(t, testConfig(db))
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[resizeArgs]) error { return nil })
		ctx := t.Context()
		createRule(t, c, "a-fails", switchyard.RuleSpec{Types: []string{"image.uploaded"}, Enabled: true,
			Filter: `data.missing.deeper > 1`, Actions: []switchyard.RuleAction{{Type: switchyard.RulePublish, Topic: "x"}}})
		createRule(t, c, "b-bad-args", switchyard.RuleSpec{Types: []string{"image.uploaded"}, Enabled: true,
			Actions: []switchyard.RuleAction{
				{Type: switchyard.RuleEnqueue, Kind: "resize", Args: `data.url`}, // a string, not an object
				{Type: switchyard.RuleEnqueue, Kind: "resize"},                   // data, as args, does not decode into resizeArgs
				{Type: switchyard.RuleEnqueue, Kind: "resize", Args: `{"url": data.url, "owner": data.owner.id}`},
			}})
		sent, err := c.SendEvents(ctx, upload("e1", 3))
		if err != nil {
			t.Fatalf("SendEvents: %v", err)
		}
		d := sent[0].Event.Dispatch
		if len(d) != 2 || d[0].Matched || !strings.HasPrefix(d[0].Error, "filter: ") {
			t.Fatalf("the failing filter's outcome = %+v", d)
		}
		if a := d[1].Actions; !d[1].Matched || len(a) != 3 || a[0].Error == "" || a[0].JobID != "" ||
			!strings.HasPrefix(a[1].Error, `args for kind "resize": json: `) || a[2].Error != "" || a[2].JobID == "" {
			t.Errorf("a failing action and a good one = %+v", d[1].Actions)
		}
	})
}

// Bad events and rules are refused whole, and write nothing.
func TestSendEventsRefusesBadInput(t *testing.T) {
	t.Parallel()
	c := open(t, testConfig("sqlite:"+testdb.SQLitePath(t)))
	ctx := t.Context()
	good := upload("ok", 1)
	for name, ev := range map[string]switchyard.CloudEvent{
		"no id":           {SpecVersion: "1.0", Source: "/s", Type: "t"},
		"no source":       {SpecVersion: "1.0", ID: "1", Type: "t"},
		"old version":     {SpecVersion: "0.3", ID: "1", Source: "/s", Type: "t"},
		"both data":       {SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t", Data: json.RawMessage(`1`), DataBase64: "AA=="},
		"bad base64":      {SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t", DataBase64: "!!"},
		"bad extension":   {SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t", Extensions: map[string]any{"Bad-Name": "x"}},
		"control chars":   {SpecVersion: "1.0", ID: "1\n", Source: "/s", Type: "t"},
		"relative schema": {SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t", DataSchema: "schema.json"},
	} {
		if _, err := c.SendEvents(ctx, good, ev); !errors.Is(err, switchyard.ErrInvalidArgument) || !strings.Contains(err.Error(), "event 1") {
			t.Errorf("%s: SendEvents = %v, want ErrInvalidArgument naming event 1", name, err)
		}
	}
	if es, _, err := c.ListEvents(ctx, switchyard.EventFilter{}); err != nil || len(es) != 0 {
		t.Errorf("after refused batches: %d events (%v), want none", len(es), err)
	}
	ok := []switchyard.RuleAction{{Type: switchyard.RulePublish, Topic: "t"}}
	for name, spec := range map[string]switchyard.RuleSpec{
		"filter syntax": {Types: []string{"*"}, Filter: "data.size >", Actions: ok},
		"unknown kind":  {Types: []string{"*"}, Actions: []switchyard.RuleAction{{Type: switchyard.RuleEnqueue, Kind: "nobody.handles"}}},
		"priority":      {Types: []string{"*"}, Actions: []switchyard.RuleAction{{Type: switchyard.RuleEnqueue, Kind: "resize", Priority: 9}}},
		"no types":      {Actions: ok},
	} {
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[resizeArgs]) error { return nil })
		if _, err := c.CreateRule(ctx, name, spec); !errors.Is(err, switchyard.ErrInvalidArgument) {
			t.Errorf("%s: CreateRule = %v, want ErrInvalidArgument", name, err)
		}
	}
	if rs, _, err := c.Rules(ctx, "", 0); err != nil || len(rs) != 0 {
		t.Errorf("after refused rules: %d rules (%v), want none", len(rs), err)
	}
}

// A rule change on one node is seen by the next event on another.
func TestRulesChangeAcrossClients(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		a := open(t, testConfig(db))
		b := open(t, testConfig(db))
		ctx := t.Context()
		if _, err := b.SendEvents(ctx, upload("before", 1)); err != nil { // b caches "no rules"
			t.Fatal(err)
		}
		r := createRule(t, a, "p", switchyard.RuleSpec{Types: []string{"image.*"}, Enabled: true,
			Actions: []switchyard.RuleAction{{Type: switchyard.RulePublish, Topic: "t"}}})
		if got, err := a.Rule(ctx, r.ID); err != nil || got.Name != "p" || !got.Enabled {
			t.Fatalf("Rule = %+v, %v", got, err)
		}
		// b hears of the change through the store's notification; wait for
		// it by sending until the rule applies, bounded.
		for i := 0; ; i++ {
			sent, err := b.SendEvents(ctx, upload("after-"+string(rune('a'+i%26))+strings.Repeat("x", i/26), 1))
			if err != nil {
				t.Fatal(err)
			}
			if len(sent[0].Event.Dispatch) == 1 {
				break
			}
			if i > 2000 {
				t.Fatal("the other client never applied the new rule")
			}
		}
		if err := a.DeleteRule(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Rule(ctx, r.ID); !errors.Is(err, switchyard.ErrNotFound) {
			t.Errorf("Rule after DeleteRule = %v", err)
		}
	})
}

type doomedArgs struct{}

func (doomedArgs) Kind() string { return "doomed" }

// The engine's job.dead goes through the rules that name it, and not
// through a rule of "*": a dead job can page someone, but the engine's
// events do not feed rules meant for received ones.
func TestSystemEventsThroughRules(t *testing.T) {
	t.Parallel()
	testdb.ForEachBackend(t, func(t *testing.T, db string) {
		cfg := testConfig(db)
		cfg.Queues = map[string]switchyard.QueueConfig{"work": {}}
		c := open(t, cfg)
		switchyard.Handle(c, func(ctx context.Context, j *switchyard.Job[doomedArgs]) error {
			return switchyard.Discard(errors.New("out of luck"))
		})
		ctx := t.Context()
		createRule(t, c, "page", switchyard.RuleSpec{Types: []string{"job.dead"}, Enabled: true,
			Actions: []switchyard.RuleAction{{Type: switchyard.RulePublish, Topic: "alerts"}}})
		createRule(t, c, "everything", switchyard.RuleSpec{Types: []string{"*"}, Enabled: true,
			Actions: []switchyard.RuleAction{{Type: switchyard.RulePublish, Topic: "everything"}}})
		alerts := subscribe(t, c, "alerts")
		start(t, c)
		job := enqueue(t, c, doomedArgs{}, &switchyard.EnqueueOpts{Queue: "work"})

		m := nextMessage(t, alerts, "job.dead alert")
		if m.Type != switchyard.EventJobDead || !strings.Contains(string(m.Data), `"subject":"job/`+job.ID+`"`) ||
			!strings.Contains(string(m.Data), "out of luck") {
			t.Fatalf("alert = %s %s", m.Type, m.Data)
		}
		es, _, err := c.ListEvents(ctx, switchyard.EventFilter{Type: switchyard.EventJobDead})
		if err != nil || len(es) != 1 {
			t.Fatalf("job.dead events recorded = %d (%v), want 1", len(es), err)
		}
		d := es[0].Dispatch
		if len(d) != 1 || d[0].RuleName != "page" {
			t.Errorf("job.dead dispatch = %+v, want the page rule only", d)
		}
		// Nothing else of the job's life was recorded.
		if all, _, _ := c.ListEvents(ctx, switchyard.EventFilter{}); len(all) != 1 {
			t.Errorf("events recorded = %d, want only job.dead", len(all))
		}
	})
}
