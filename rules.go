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
