package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Subscription tokens are short-lived read grants for real-time topics,
// handed to browsers: an HS256 JWT signed with the same instance key as
// access tokens, naming one tenant and the topics (or topic patterns) it may
// read, and nothing else.
//
// The two kinds can never stand in for each other: a subscription token
// carries the claim typ "subscription" and no session (sid), which
// ParseAccess requires; an access token has no typ claim, which
// ParseSubscription requires.

// SubscriptionType is the typ claim of every subscription token.
const SubscriptionType = "subscription"

// SubscriptionClaims are what a subscription token says.
type SubscriptionClaims struct {
	// ID is the token's own id (jti).
	ID string
	// TenantID is the tenant whose topics it grants.
	TenantID string
	// Topics are the topic names and patterns it grants (see the root
	// package's SubscriptionToken for their syntax).
	Topics []string
	// Subject names who the token is for (sub): chosen by the issuer, else
	// the token's id. Connection limits count per subject.
	Subject string
	// IssuedBy names the credential that issued it ("key:ID" or
	// "user:ID"), for logs.
	IssuedBy  string
	ExpiresAt time.Time
}

type subscriptionClaims struct {
	jwt.RegisteredClaims
	Type     string   `json:"typ"`
	Tenant   string   `json:"ten"`
	Topics   []string `json:"tpc"`
	IssuedBy string   `json:"iby,omitempty"`
}

// ErrSubscriptionExpired: the subscription token was genuine but has
// expired.
var ErrSubscriptionExpired = errors.New("subscription token expired")

// SignSubscription returns an HS256 subscription token for c (its ID and
// ExpiresAt are ignored: a fresh id is drawn and it expires ttl after now).
// An empty Subject becomes the token's id.
func SignSubscription(secret []byte, c SubscriptionClaims, now time.Time, ttl time.Duration) (string, SubscriptionClaims, error) {
	if c.TenantID == "" || len(c.Topics) == 0 {
		return "", SubscriptionClaims{}, errors.New("auth: sign subscription token: no tenant or no topics")
	}
	if ttl <= 0 {
		return "", SubscriptionClaims{}, errors.New("auth: sign subscription token: ttl must be positive")
	}
	c.ID = rand.Text()
	if c.Subject == "" {
		c.Subject = c.ID
	}
	exp := jwt.NewNumericDate(now.Add(ttl))
	c.ExpiresAt = exp.Time
	jc := subscriptionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   c.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: exp,
			ID:        c.ID,
		},
		Type:     SubscriptionType,
		Tenant:   c.TenantID,
		Topics:   c.Topics,
		IssuedBy: c.IssuedBy,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jc).SignedString(secret)
	if err != nil {
		return "", SubscriptionClaims{}, fmt.Errorf("auth: sign subscription token: %w", err)
	}
	return s, c, nil
}

// ParseSubscription verifies a subscription token: HS256 with secret only,
// issued by Switchyard, typ "subscription", not expired at now, naming a
// tenant and at least one topic.
func ParseSubscription(secret []byte, token string, now time.Time) (SubscriptionClaims, error) {
	var c subscriptionClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return SubscriptionClaims{}, ErrSubscriptionExpired
	}
	if err != nil {
		return SubscriptionClaims{}, fmt.Errorf("invalid subscription token: %w", err)
	}
	if c.Type != SubscriptionType {
		return SubscriptionClaims{}, errors.New("invalid subscription token: not a subscription token")
	}
	if c.Tenant == "" || len(c.Topics) == 0 || c.Subject == "" {
		return SubscriptionClaims{}, errors.New("invalid subscription token: no tenant, topics or subject")
	}
	return SubscriptionClaims{
		ID: c.ID, TenantID: c.Tenant, Topics: c.Topics, Subject: c.Subject,
		IssuedBy: c.IssuedBy, ExpiresAt: c.ExpiresAt.Time,
	}, nil
}

// LooksLikeSubscription tells a subscription token from an access token
// without verifying it, by its typ claim; whichever it looks like, it must
// then pass that kind's own verification.
func LooksLikeSubscription(token string) bool {
	if !LooksLikeJWT(token) {
		return false
	}
	parts := strings.SplitN(token, ".", 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct {
		Type string `json:"typ"`
	}
	return json.Unmarshal(payload, &c) == nil && c.Type == SubscriptionType
}
