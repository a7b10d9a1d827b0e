package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Rule routes events: when an event's type matches one of Types and
// Filter holds for it, the rule's actions run, in the transaction that
// records the event.
type Rule struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Types     []string     `json:"types"`
	Filter    string       `json:"filter"`
	Enabled   bool         `json:"enabled"`
	Actions   []RuleAction `json:"actions"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`

	// Raw is the rule exactly as the server sent it, including fields this
	// version of the client does not know. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's rule shape, keeping a copy in Raw.
func (r *Rule) UnmarshalJSON(b []byte) error {
	type plain Rule
	*r = Rule{}
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	r.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// RuleAction is one thing a matching rule does: "enqueue" a job of Kind
// in Queue, its args the expression Args over the event (default: the
// event's data), or "publish" the event to Topic.
type RuleAction struct {
	Type        string `json:"type"`
	Queue       string `json:"queue,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Args        string `json:"args,omitempty"`
	Priority    int    `json:"priority,omitempty"`
	MaxAttempts int    `json:"max_attempts,omitempty"`
	Delay       string `json:"delay,omitempty"` // "30s"
	UniqueKey   string `json:"unique_key,omitempty"`
	Topic       string `json:"topic,omitempty"`
}

// RuleRequest is a whole rule, to create or replace.
type RuleRequest struct {
	Name string `json:"name"`
	// Types are event type patterns: "image.uploaded", "image.*" or "*".
	Types []string `json:"types"`
	// Filter, if set, is an expression that must be true for the actions
	// to run: `data.size > 1000`.
	Filter string `json:"filter,omitempty"`
	// Enabled: nil for true.
	Enabled *bool        `json:"enabled,omitempty"`
	Actions []RuleAction `json:"actions"`
}

// RulePage is one page of ListRules.
type RulePage = Page[Rule]

// CreateRule saves a rule in the tenant. A rule of the same name answers
// an *Error with code "conflict"; an expression that does not compile,
// "invalid_argument".
func (c *Client) CreateRule(ctx context.Context, req RuleRequest) (*Rule, error) {
	r := new(Rule)
	if _, err := c.do(ctx, http.MethodPost, "/v1/rules", nil, req, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ListRules returns one page of the tenant's rules in id order.
func (c *Client) ListRules(ctx context.Context, p ListParams) (*RulePage, error) {
	return listPage[Rule](ctx, c, "/v1/rules", p.query())
}

// GetRule returns one of the tenant's rules.
func (c *Client) GetRule(ctx context.Context, id string) (*Rule, error) {
	if id == "" {
		return nil, errEmpty("rule id")
	}
	r := new(Rule)
	if _, err := c.do(ctx, http.MethodGet, "/v1/rules/"+url.PathEscape(id), nil, nil, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ReplaceRule replaces a rule's name, types, filter, enabled flag and
// actions, as one.
func (c *Client) ReplaceRule(ctx context.Context, id string, req RuleRequest) (*Rule, error) {
	if id == "" {
		return nil, errEmpty("rule id")
	}
	r := new(Rule)
	if _, err := c.do(ctx, http.MethodPut, "/v1/rules/"+url.PathEscape(id), nil, req, r); err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteRule deletes a rule.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	if id == "" {
		return errEmpty("rule id")
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/rules/"+url.PathEscape(id), nil, nil, nil)
	return err
}
