package switchyard_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestSubscriptionTokens(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := switchyard.Open(ctx, testConfig("sqlite:"+testdb.SQLitePath(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acme := c.ForTenant("acme")

	tok, err := acme.IssueSubscriptionToken(ctx, switchyard.SubscriptionTokenParams{Topics: []string{"workflow.7", "chat.*"}, Subject: "user-1", IssuedBy: "key:k"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || tok.TenantID != "acme" || tok.Subject != "user-1" || time.Until(tok.ExpiresAt) > switchyard.DefaultSubscriptionTokenTTL {
		t.Fatalf("issued %+v", tok)
	}
	if !switchyard.IsSubscriptionToken(tok.Token) {
		t.Error("IsSubscriptionToken is false for a subscription token")
	}
	// Any view verifies it; it names its own tenant.
	got, err := c.VerifySubscriptionToken(ctx, tok.Token)
	if err != nil || got.TenantID != "acme" || got.Subject != "user-1" || got.IssuedBy != "key:k" || got.Token != "" {
		t.Fatalf("verified %+v, %v", got, err)
	}
	for topic, ok := range map[string]bool{"workflow.7": true, "workflow.8": false, "chat.x": true, "chat": false, "jobs": false} {
		if got.Allows(topic) != ok {
			t.Errorf("Allows(%q) = %v", topic, !ok)
		}
	}
	anon, err := acme.IssueSubscriptionToken(ctx, switchyard.SubscriptionTokenParams{Topics: []string{"x"}, TTL: time.Hour})
	if err != nil || anon.Subject != anon.ID || anon.ID == "" {
		t.Fatalf("no subject: %+v, %v", anon, err)
	}

	for _, bad := range []string{"", "nonsense", "a.b.c", tok.Token[:len(tok.Token)-3]} {
		if _, err := c.VerifySubscriptionToken(ctx, bad); !errors.Is(err, switchyard.ErrUnauthenticated) {
			t.Errorf("VerifySubscriptionToken(%q): %v", bad, err)
		}
	}
	// A user's access token is not a subscription token, nor the reverse.
	if _, err := c.AddMember(ctx, switchyard.NewUser{Email: "ana@example.com", Password: "a long enough password", Role: switchyard.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	sess, err := c.Login(ctx, "ana@example.com", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifySubscriptionToken(ctx, sess.AccessToken); !errors.Is(err, switchyard.ErrUnauthenticated) {
		t.Errorf("an access token verified as a subscription token: %v", err)
	}
	if _, _, err := c.AuthenticateAccessToken(ctx, tok.Token); !errors.Is(err, switchyard.ErrUnauthenticated) {
		t.Errorf("a subscription token authenticated as an access token: %v", err)
	}

	for name, p := range map[string]switchyard.SubscriptionTokenParams{
		"no topics":      {},
		"bad name":       {Topics: []string{"a b"}},
		"bad pattern":    {Topics: []string{"*"}},
		"twice":          {Topics: []string{"x", "x"}},
		"too long":       {Topics: []string{"x"}, TTL: 25 * time.Hour},
		"too short":      {Topics: []string{"x"}, TTL: time.Millisecond},
		"subject":        {Topics: []string{"x"}, Subject: "a\nb"},
		"too many":       {Topics: strings.Fields(strings.Repeat("x ", 101))},
		"name too long":  {Topics: []string{strings.Repeat("x", 257)}},
		"empty in list":  {Topics: []string{""}},
		"pattern prefix": {Topics: []string{".*"}},
	} {
		if _, err := acme.IssueSubscriptionToken(ctx, p); !errors.Is(err, switchyard.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// ExampleClient_IssueSubscriptionToken gives a browser a token that reads
// one job's live updates for ten minutes, and nothing else.
func ExampleClient_IssueSubscriptionToken() {
	dir, _ := os.MkdirTemp("", "switchyard-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	client, err := switchyard.Open(ctx, switchyard.Config{Database: "sqlite:" + filepath.Join(dir, "switchyard.db")})
	if err != nil {
		panic(err)
	}
	defer client.Close()

	tok, err := client.IssueSubscriptionToken(ctx, switchyard.SubscriptionTokenParams{
		Topics:  []string{"job.42"},
		TTL:     10 * time.Minute,
		Subject: "user-17", // connection limits count per subject
	})
	if err != nil {
		panic(err)
	}
	// Hand tok.Token to the page: connect({token}) from /v1/client.js, or
	// GET /v1/ws?token=… yourself.
	got, _ := client.VerifySubscriptionToken(ctx, tok.Token)
	fmt.Println(got.Topics, got.Allows("job.42"), got.Allows("job.43"))
	// Output: [job.42] true false
}
