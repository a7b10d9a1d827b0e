package switchyard

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/store"
)

// Rules route events: a rule whose type patterns match an event's type,
// and whose filter holds for it, runs its actions — enqueue a job, publish
// the event to a topic — in the same transaction that records the event.
type (
	// RuleSpec is what a rule matches and does.
	RuleSpec = dispatch.Spec
	// RuleAction is one action of a rule.
	RuleAction = dispatch.Action
)

// Rule action types.
const (
	RuleEnqueue = dispatch.ActionEnqueue
	RulePublish = dispatch.ActionPublish
)

// Rule is a stored rule.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	RuleSpec
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// maxRuleName bounds a rule's name.
const maxRuleName = 128

// checkRule compiles spec, and checks what each enqueue action would
// enqueue as far as it is known before an event comes (the kind, the
// queue, priority and attempts), so that a rule that could never enqueue
// is refused when it is saved.
func (c *Client) checkRule(name string, spec RuleSpec) (*dispatch.Rule, error) {
	if name == "" || len(name) > maxRuleName {
		return nil, invalid("rule name: 1 to %d characters", maxRuleName)
	}
	r, err := dispatch.Compile("", name, spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	for i, a := range spec.Actions {
		if a.Type != RuleEnqueue {
			continue
		}
		if _, err := c.validate(ruleJob(&dispatch.Job{Queue: a.Queue, Kind: a.Kind, Args: json.RawMessage(`{}`),
			Priority: a.Priority, MaxAttempts: a.MaxAttempts})); err != nil {
			return nil, fmt.Errorf("actions[%d]: %w", i, err)
		}
	}
	return r, nil
}

// ruleJob is what an enqueue decision enqueues.
func ruleJob(j *dispatch.Job) EnqueueParams {
	return EnqueueParams{
		Args: RawArgs{KindName: j.Kind, JSON: j.Args},
		Opts: &EnqueueOpts{Queue: j.Queue, Priority: j.Priority, MaxAttempts: j.MaxAttempts, Delay: j.Delay, UniqueKey: j.UniqueKey},
	}
}

func newRuleID() string { return "rul_" + rand.Text()[:16] }

func ruleFromStore(r *store.Definition) (*Rule, error) {
	out := &Rule{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if err := json.Unmarshal(r.Spec, &out.RuleSpec); err != nil {
		return nil, fmt.Errorf("rule %s: stored spec: %w", r.ID, err)
	}
	return out, nil
}

// CreateRule saves a rule in this client's tenant. A rule of that name
// existing answers ErrConflict.
func (c *Client) CreateRule(ctx context.Context, name string, spec RuleSpec) (*Rule, error) {
	if _, err := c.checkRule(name, spec); err != nil {
		return nil, fmt.Errorf("switchyard: create rule: %w", err)
	}
	d, err := c.saveDefinition(ctx, store.KindRule, newRuleID(), name, spec, true, 0)
	if err != nil {
		return nil, fmt.Errorf("switchyard: create rule: %w", err)
	}
	return ruleFromStore(d)
}

// Rule returns one rule; ErrNotFound for an unknown id or another
// tenant's.
func (c *Client) Rule(ctx context.Context, id string) (*Rule, error) {
	r, err := c.store.GetDefinition(ctx, store.KindRule, c.cfg.TenantID, id)
	if err != nil {
		return nil, fmt.Errorf("switchyard: rule %s: %w", id, err)
	}
	return ruleFromStore(r)
}

// Rules returns a page of the tenant's rules by id, and the cursor of the
// next page ("" after the last).
func (c *Client) Rules(ctx context.Context, cursor string, limit int) ([]*Rule, string, error) {
	return definitionList(ctx, c, store.KindRule, cursor, limit, ruleFromStore)
}

// UpdateRule replaces a rule's name and spec.
func (c *Client) UpdateRule(ctx context.Context, id, name string, spec RuleSpec) (*Rule, error) {
	if _, err := c.checkRule(name, spec); err != nil {
		return nil, fmt.Errorf("switchyard: update rule %s: %w", id, err)
	}
	d, err := c.saveDefinition(ctx, store.KindRule, id, name, spec, false, 0)
	if err != nil {
		return nil, fmt.Errorf("switchyard: update rule %s: %w", id, err)
	}
	return ruleFromStore(d)
}

// DeleteRule deletes a rule; ErrNotFound for an unknown id or another
// tenant's.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	if err := c.store.DeleteDefinition(ctx, store.KindRule, c.cfg.TenantID, id); err != nil {
		return fmt.Errorf("switchyard: delete rule %s: %w", id, err)
	}
	c.clearDefinitions()
	return nil
}

// tenantRules returns the tenant's enabled rules, compiled, in name order,
// from the cache or the store. A stored rule that no longer compiles (a kind unregistered
// since) is returned as one that fails every event it matches, so that
// the failure is recorded on the events rather than the rule vanishing.
func (c *Client) tenantRules(ctx context.Context) ([]*compiledRule, error) {
	now := time.Now()
	if rs, ok := c.rules.get(c.cfg.TenantID, now); ok {
		return rs, nil
	}
	gen := c.rules.generation()
	stored, err := c.store.ListDefinitions(ctx, store.KindRule, c.cfg.TenantID, "", 0)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	rs := make([]*compiledRule, 0, len(stored))
	for _, s := range stored {
		var spec RuleSpec
		if err := json.Unmarshal(s.Spec, &spec); err != nil {
			return nil, fmt.Errorf("rule %s: stored spec: %w", s.ID, err)
		}
		if !spec.Enabled {
			continue
		}
		r, err := dispatch.Compile(s.ID, s.Name, spec)
		if err != nil {
			r = &dispatch.Rule{ID: s.ID, Name: s.Name, Spec: spec}
		}
		rs = append(rs, &compiledRule{rule: r, err: err})
	}
	// Rules run, and are recorded on events, in name order.
	slices.SortFunc(rs, func(a, b *compiledRule) int { return strings.Compare(a.rule.Name, b.rule.Name) })
	c.rules.put(c.cfg.TenantID, rs, time.Time{}, now, gen)
	return rs, nil
}

// compiledRule is a cached rule, or why it cannot run.
type compiledRule struct {
	rule *dispatch.Rule
	err  error
}

// eventPlan gathers what the rules and endpoints make of one event: the
// record to write, with its jobs and outcomes, and the topics to publish
// it to once it is written.
type eventPlan struct {
	c         *Client
	event     *CloudEvent
	rec       *store.EventRecord
	topics    []string
	endpoints map[string]*Endpoint // the tenant's, by id
	delivered map[string]bool      // endpoints that have a delivery job
	system    bool                 // the engine's own event: see routedSystemEvents
	env       *dispatch.Event      // what expressions see, decoded once when a rule needs it
}

func (p *eventPlan) expressionEnv() (*dispatch.Event, error) {
	if p.env != nil {
		return p.env, nil
	}
	e := p.event
	env := &dispatch.Event{
		ID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject, SpecVersion: e.SpecVersion,
		DataContentType: e.DataContentType, DataSchema: e.DataSchema, Extensions: e.Extensions,
	}
	if e.Time != nil {
		env.Time = e.Time.UTC().Format(time.RFC3339Nano)
	}
	if env.Extensions == nil {
		env.Extensions = map[string]any{}
	}
	if len(e.Data) > 0 {
		if err := json.Unmarshal(e.Data, &env.Data); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	}
	p.env = env
	return env, nil
}

// rule evaluates one rule whose types matched, and records its outcome.
func (p *eventPlan) rule(cr *compiledRule) {
	o := store.RuleOutcome{RuleID: cr.rule.ID, RuleName: cr.rule.Name}
	defer func() { p.rec.Outcomes = append(p.rec.Outcomes, o) }()
	if cr.err != nil {
		o.Error = cr.err.Error()
		return
	}
	env, err := p.expressionEnv()
	if err != nil {
		o.Error = err.Error()
		return
	}
	matched, decisions, err := cr.rule.Evaluate(env)
	if err != nil {
		o.Error = err.Error()
		return
	}
	o.Matched = matched
	for _, d := range decisions {
		a := store.ActionOutcome{Action: d.Action, Job: -1, Topic: d.Topic, Endpoint: d.Endpoint}
		switch {
		case d.Err != nil:
			a.Error = d.Err.Error()
		case d.Job != nil:
			job, err := p.c.validate(ruleJob(d.Job))
			if err != nil {
				a.Error = strings.TrimPrefix(err.Error(), ErrInvalidArgument.Error()+": ")
				break
			}
			a.Job = p.addJob(job)
		case d.Topic != "":
			p.topics = append(p.topics, d.Topic)
		case d.Endpoint != "":
			a.Job, a.Error = p.deliver(d.Endpoint)
		}
		o.Actions = append(o.Actions, a)
	}
}

func (p *eventPlan) addJob(job store.InsertParams) int {
	p.rec.Jobs = append(p.rec.Jobs, job)
	return len(p.rec.Jobs) - 1
}

// deliver adds a delivery of the event to endpoint id, unless it has one,
// and returns its job's index (-1 for none) or why it cannot be.
func (p *eventPlan) deliver(id string) (job int, problem string) {
	ep := p.endpoints[id]
	switch {
	case ep == nil:
		return -1, "no such endpoint"
	case ep.Disabled:
		return -1, "endpoint disabled"
	case p.delivered[id]:
		return -1, "" // delivered once already
	}
	// An endpoint is never sent the system's events about itself: a
	// failing endpoint would feed itself failures forever.
	if (p.event.Type == EventDeliveryFailed || p.event.Type == EventEndpointDisabled) && p.event.Subject == id {
		return -1, "not sent to the endpoint it is about"
	}
	d, err := p.c.deliveryJob(id, p.event)
	if err != nil {
		return -1, err.Error()
	}
	if p.delivered == nil {
		p.delivered = map[string]bool{}
	}
	p.delivered[id] = true
	return p.addJob(d), ""
}

// subscriptions adds a delivery for every endpoint whose types match the
// event and that no rule delivered to, each recorded as an outcome.
func (p *eventPlan) subscriptions(endpoints []*Endpoint) {
	for _, ep := range endpoints {
		wants := ep.wants(p.event.Type)
		if p.system {
			wants = ep.wantsSystem(p.event.Type)
		}
		if !wants || p.delivered[ep.ID] {
			continue
		}
		job, problem := p.deliver(ep.ID)
		if job < 0 && problem == "" {
			continue
		}
		p.rec.Outcomes = append(p.rec.Outcomes, store.RuleOutcome{RuleID: ep.ID, RuleName: "endpoint " + ep.Name, Matched: true,
			Actions: []store.ActionOutcome{{Action: dispatch.ActionDeliver, Job: job, Endpoint: ep.ID, Error: problem}}})
	}
}
