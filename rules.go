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
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("switchyard: create rule: %w", err)
	}
	r, err := c.store.CreateDefinition(ctx, store.Definition{Kind: store.KindRule, ID: newRuleID(), TenantID: c.cfg.TenantID, Name: name, Spec: b})
	if err != nil {
		return nil, fmt.Errorf("switchyard: create rule: %w", err)
	}
	c.rules.clear()
	return ruleFromStore(r)
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
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, "", invalid("limit must be between 1 and 1000, got %d", limit)
	}
	rs, err := c.store.ListDefinitions(ctx, store.KindRule, c.cfg.TenantID, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: list rules: %w", err)
	}
	next := ""
	if len(rs) > limit {
		rs = rs[:limit]
		next = rs[len(rs)-1].ID
	}
	out := make([]*Rule, len(rs))
	for i, r := range rs {
		if out[i], err = ruleFromStore(r); err != nil {
			return nil, "", fmt.Errorf("switchyard: list rules: %w", err)
		}
	}
	return out, next, nil
}

// UpdateRule replaces a rule's name and spec.
func (c *Client) UpdateRule(ctx context.Context, id, name string, spec RuleSpec) (*Rule, error) {
	if _, err := c.checkRule(name, spec); err != nil {
		return nil, fmt.Errorf("switchyard: update rule %s: %w", id, err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("switchyard: update rule %s: %w", id, err)
	}
	r, err := c.store.UpdateDefinition(ctx, store.Definition{Kind: store.KindRule, ID: id, TenantID: c.cfg.TenantID, Name: name, Spec: b})
	if err != nil {
		return nil, fmt.Errorf("switchyard: update rule %s: %w", id, err)
	}
	c.rules.clear()
	return ruleFromStore(r)
}

// DeleteRule deletes a rule; ErrNotFound for an unknown id or another
// tenant's.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	if err := c.store.DeleteDefinition(ctx, store.KindRule, c.cfg.TenantID, id); err != nil {
		return fmt.Errorf("switchyard: delete rule %s: %w", id, err)
	}
	c.rules.clear()
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

// outcome evaluates the rule for an event of type typ, and turns enqueue
// decisions into jobs appended to jobs.
func (c *Client) outcome(cr *compiledRule, ev func() (*dispatch.Event, error), jobs *[]store.InsertParams, topics *[]string) store.RuleOutcome {
	o := store.RuleOutcome{RuleID: cr.rule.ID, RuleName: cr.rule.Name}
	if cr.err != nil {
		o.Error = cr.err.Error()
		return o
	}
	env, err := ev()
	if err != nil {
		o.Error = err.Error()
		return o
	}
	matched, decisions, err := cr.rule.Evaluate(env)
	if err != nil {
		o.Error = err.Error()
		return o
	}
	o.Matched = matched
	for _, d := range decisions {
		a := store.ActionOutcome{Action: d.Action, Job: -1, Topic: d.Topic}
		switch {
		case d.Err != nil:
			a.Error = d.Err.Error()
		case d.Job != nil:
			p, err := c.validate(ruleJob(d.Job))
			if err != nil {
				a.Error = strings.TrimPrefix(err.Error(), ErrInvalidArgument.Error()+": ")
				break
			}
			a.Job = len(*jobs)
			*jobs = append(*jobs, p)
		case d.Topic != "":
			*topics = append(*topics, d.Topic)
		}
		o.Actions = append(o.Actions, a)
	}
	return o
}
