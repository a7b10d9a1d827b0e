package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/switchyard-dev/switchyard/client"
)

func ExampleClient_Login() {
	ctx := context.Background()
	c, err := client.New(client.Config{BaseURL: "http://localhost:8080"})
	if err != nil {
		log.Fatal(err)
	}
	sess, err := c.Login(ctx, "ana@example.com", os.Getenv("SWITCHYARD_PASSWORD"))
	if err != nil {
		log.Fatal(err)
	}
	// Act as Ana in one of her tenants. The access token lasts
	// sess.ExpiresIn; trade sess.RefreshToken for a new one with Refresh.
	ana := c.WithCredential(sess.AccessToken).WithTenant("acme")
	me, err := ana.Me(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(me.User.Email, me.TenantID, me.Role)
}

func ExampleClient_CreateKey() {
	ctx := context.Background()
	c, err := client.New(client.Config{APIKey: os.Getenv("SWITCHYARD_API_KEY"), Tenant: "acme"})
	if err != nil {
		log.Fatal(err)
	}
	key, secret, err := c.CreateKey(ctx, client.KeyRequest{
		Name:      "grafana",
		Role:      client.RoleViewer,
		ExpiresAt: time.Now().Add(90 * 24 * time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}
	// The secret is shown only this once.
	fmt.Println(key.ID, secret)
}

func ExampleClient_ListAudit() {
	ctx := context.Background()
	c, err := client.New(client.Config{APIKey: os.Getenv("SWITCHYARD_API_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	// Every refused request of the last day, newest first.
	p := client.AuditParams{Result: client.AuditDenied, Since: time.Now().Add(-24 * time.Hour)}
	for {
		page, err := c.ListAudit(ctx, p)
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range page.Items {
			fmt.Println(e.Time, e.Actor.Type, e.Actor.ID, e.Action, e.Status)
		}
		if page.NextCursor == "" {
			break
		}
		p.Cursor = page.NextCursor
	}
}
