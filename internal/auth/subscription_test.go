package auth

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSubscriptionToken(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tok, issued, err := SignSubscription(secret, SubscriptionClaims{TenantID: "acme", Topics: []string{"workflow.7", "chat.*"}, IssuedBy: "key:k1"}, now, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if issued.ID == "" || issued.Subject != issued.ID || !issued.ExpiresAt.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("issued claims %+v", issued)
	}
	if !LooksLikeJWT(tok) || !LooksLikeSubscription(tok) {
		t.Fatalf("%q does not look like a subscription token", tok)
	}
	c, err := ParseSubscription(secret, tok, now.Add(9*time.Minute))
	if err != nil || c.TenantID != "acme" || !slices.Equal(c.Topics, []string{"workflow.7", "chat.*"}) || c.Subject != issued.ID || c.IssuedBy != "key:k1" || c.ID != issued.ID {
		t.Fatalf("ParseSubscription = %+v, %v", c, err)
	}
	if _, err := ParseSubscription(secret, tok, now.Add(11*time.Minute)); !errors.Is(err, ErrSubscriptionExpired) {
		t.Errorf("expired: err = %v, want ErrSubscriptionExpired", err)
	}
	if _, err := ParseSubscription([]byte("another secret, just as long....."), tok, now); err == nil {
		t.Error("a token signed with another key was accepted")
	}
	parts := strings.Split(tok, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	if _, err := ParseSubscription(secret, none, now); err == nil {
		t.Error("an alg=none token was accepted")
	}

	// Neither kind passes for the other.
	if _, err := ParseAccess(secret, tok, now); err == nil {
		t.Error("a subscription token was accepted as an access token")
	}
	access, err := SignAccess(secret, "usr_1", "fam_1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if LooksLikeSubscription(access) {
		t.Error("an access token looks like a subscription token")
	}
	if _, err := ParseSubscription(secret, access, now); err == nil {
		t.Error("an access token was accepted as a subscription token")
	}

	named, _, err := SignSubscription(secret, SubscriptionClaims{TenantID: "acme", Topics: []string{"x"}, Subject: "user-42"}, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ParseSubscription(secret, named, now); err != nil || c.Subject != "user-42" {
		t.Errorf("named subject: %+v, %v", c, err)
	}
	for _, bad := range []SubscriptionClaims{{TenantID: "acme"}, {Topics: []string{"x"}}} {
		if _, _, err := SignSubscription(secret, bad, now, time.Minute); err == nil {
			t.Errorf("SignSubscription(%+v) succeeded", bad)
		}
	}
	for _, bad := range []string{"", "a.b.c", "not a token"} {
		if LooksLikeSubscription(bad) {
			t.Errorf("LooksLikeSubscription(%q)", bad)
		}
	}
}
