package switchyard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/auth"
)

// Subscription tokens let a browser read live topics without holding an
// API key or a user's session: a backend (any viewer or better) issues one
// for exactly the topics a page needs, for minutes, and the page connects
// with it (GET /v1/ws?token=… or GET /v1/stream?token=…). A subscription
// token reads those topics of its tenant and does nothing else: it is not
// accepted anywhere else in the API, and an access token or API key is
// never accepted as one.
const (
	// DefaultSubscriptionTokenTTL is how long a subscription token lasts
	// unless the issuer says otherwise.
	DefaultSubscriptionTokenTTL = 10 * time.Minute
	// MaxSubscriptionTokenTTL is the longest a subscription token may last.
	MaxSubscriptionTokenTTL = 24 * time.Hour
	// MaxSubscriptionTokenTopics bounds the topics one token names.
	MaxSubscriptionTokenTopics = 100
	// MaxTopicNameBytes bounds a topic's name.
	MaxTopicNameBytes = 256
)

// SubscriptionToken is a verified (or just issued) subscription token.
type SubscriptionToken struct {
	// Token is the token itself, a JWT; set only when issued.
	Token string `json:"token,omitempty"`
	// ID is the token's own id.
	ID string `json:"id"`
	// TenantID is the tenant whose topics it reads.
	TenantID string `json:"tenant_id"`
	// Topics are the topics it reads: exact names, or patterns ending in
	// ".*" that match every topic beginning with what precedes the "*"
	// ("workflow.*" matches "workflow.7" and "workflow.7.step", not
	// "workflow").
	Topics []string `json:"topics"`
	// Subject is who the token is for, as the issuer named it, else the
	// token's id. Connection limits per credential count per subject.
	Subject string `json:"subject"`
	// IssuedBy names the credential that issued it ("key:ID", "user:ID"),
	// if the issuer said.
	IssuedBy  string    `json:"-"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Allows reports whether the token may read topic.
func (t *SubscriptionToken) Allows(topic string) bool {
	for _, p := range t.Topics {
		if TopicMatches(p, topic) {
			return true
		}
	}
	return false
}

// SubscriptionTokenParams says what a new subscription token grants.
type SubscriptionTokenParams struct {
	// Topics the token reads: 1 to MaxSubscriptionTokenTopics topic names
	// or patterns (see SubscriptionToken.Topics). Required.
	Topics []string
	// TTL is how long the token lasts, at most MaxSubscriptionTokenTTL.
	// Default DefaultSubscriptionTokenTTL.
	TTL time.Duration
	// Subject names who the token is for (an end user's id, say), so that
	// connection limits count per person rather than per token. Default:
	// the token's own id.
	Subject string
	// IssuedBy names the issuing credential, for logs. Default none.
	IssuedBy string
}

// IssueSubscriptionToken issues a subscription token for topics of this
// client's tenant, signed with the instance key every node shares.
func (c *Client) IssueSubscriptionToken(ctx context.Context, p SubscriptionTokenParams) (*SubscriptionToken, error) {
	if len(p.Topics) == 0 || len(p.Topics) > MaxSubscriptionTokenTopics {
		return nil, invalid("subscription token: topics: want 1 to %d topics, got %d", MaxSubscriptionTokenTopics, len(p.Topics))
	}
	seen := make(map[string]bool, len(p.Topics))
	for _, t := range p.Topics {
		if err := CheckTopicPattern(t); err != nil {
			return nil, fmt.Errorf("switchyard: subscription token: %w", err)
		}
		if seen[t] {
			return nil, invalid("subscription token: topic %q is listed twice", t)
		}
		seen[t] = true
	}
	switch {
	case p.TTL == 0:
		p.TTL = DefaultSubscriptionTokenTTL
	case p.TTL < time.Second || p.TTL > MaxSubscriptionTokenTTL:
		return nil, invalid("subscription token: ttl must be between 1s and %s, got %s", MaxSubscriptionTokenTTL, p.TTL)
	}
	if len(p.Subject) > MaxTopicNameBytes || strings.ContainsFunc(p.Subject, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, invalid("subscription token: subject must be at most %d bytes without control characters", MaxTopicNameBytes)
	}
	key, err := c.signingKey(ctx)
	if err != nil {
		return nil, err
	}
	tok, claims, err := auth.SignSubscription(key, auth.SubscriptionClaims{
		TenantID: c.cfg.TenantID, Topics: p.Topics, Subject: p.Subject, IssuedBy: p.IssuedBy,
	}, time.Now(), p.TTL)
	if err != nil {
		return nil, fmt.Errorf("switchyard: %w", err)
	}
	st := subscriptionToken(claims)
	st.Token = tok
	return st, nil
}

// VerifySubscriptionToken verifies a subscription token and returns what it
// grants. A token that is not a genuine, unexpired subscription token of
// this instance (an access token included) fails with ErrUnauthenticated.
func (c *Client) VerifySubscriptionToken(ctx context.Context, token string) (*SubscriptionToken, error) {
	key, err := c.signingKey(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := auth.ParseSubscription(key, token, time.Now())
	if err != nil {
		return nil, fmt.Errorf("switchyard: %w: %w", ErrUnauthenticated, err)
	}
	return subscriptionToken(claims), nil
}

// IsSubscriptionToken tells a subscription token from other credentials by
// its form, without verifying it.
func IsSubscriptionToken(credential string) bool { return auth.LooksLikeSubscription(credential) }

func subscriptionToken(c auth.SubscriptionClaims) *SubscriptionToken {
	return &SubscriptionToken{
		ID: c.ID, TenantID: c.TenantID, Topics: c.Topics, Subject: c.Subject,
		IssuedBy: c.IssuedBy, ExpiresAt: c.ExpiresAt,
	}
}

// CheckTopicName validates a topic's name as the HTTP API takes it: 1 to
// MaxTopicNameBytes letters, digits and ". _ : @ -".
func CheckTopicName(name string) error {
	if name == "" {
		return invalid("topic name is empty")
	}
	if len(name) > MaxTopicNameBytes {
		return invalid("topic name is longer than %d bytes", MaxTopicNameBytes)
	}
	for i := 0; i < len(name); i++ {
		if !topicByte(name[i]) {
			return invalid("topic %q: names are letters, digits and . _ : @ -", name)
		}
	}
	return nil
}

// CheckTopicPattern validates a topic name or a pattern: a name followed
// by ".*", matching every topic that begins with the name and the dot.
func CheckTopicPattern(p string) error {
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		if err := CheckTopicName(prefix); err != nil {
			return invalid("topic pattern %q: want a topic name before .*", p)
		}
		return nil
	}
	return CheckTopicName(p)
}

// TopicMatches reports whether topic matches pattern (a name, or a name
// followed by ".*").
func TopicMatches(pattern, topic string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok && strings.HasSuffix(prefix, ".") {
		return len(topic) > len(prefix) && strings.HasPrefix(topic, prefix)
	}
	return pattern == topic
}

// IsBuiltinTopic reports whether topic is one the engine publishes:
// jobs, job.{id}, queue.{name}, workflow.{run_id}, events, events.{type}
// and workers. Only the engine publishes to them; every other name is a
// user topic.
func IsBuiltinTopic(topic string) bool {
	switch topic {
	case "jobs", "events", "workers":
		return true
	}
	for _, prefix := range []string{"job.", "queue.", "workflow.", "events."} {
		if strings.HasPrefix(topic, prefix) {
			return true
		}
	}
	return false
}

func topicByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '@' || c == '-'
}
