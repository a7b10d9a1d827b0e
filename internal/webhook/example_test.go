package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// ExampleVerify checks a GitHub delivery. While a secret is rotated, the
// source lists both; a signature made with either is accepted.
func ExampleVerify() {
	src := webhook.Source{Scheme: webhook.SchemeGitHub, Secrets: []string{"old secret", "new secret"}}
	body := []byte(`{"ref":"refs/heads/main"}`)

	// What GitHub sends.
	mac := hmac.New(sha256.New, []byte("new secret"))
	mac.Write(body)
	h := http.Header{}
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("X-GitHub-Event", "push")
	h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")

	d, err := webhook.Verify(src, h, body, time.Now())
	fmt.Println(d.Type, d.ID, err)

	// A forged request.
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(make([]byte, 32)))
	_, err = webhook.Verify(src, h, body, time.Now())
	fmt.Println(errors.Is(err, webhook.ErrBadSignature))
	// Output:
	// github.push 72d3162e-cc78-11e3-81ab-4c9367dc0958 <nil>
	// true
}

// ExampleSetHeaders signs an outbound delivery in the Standard Webhooks
// format, here with the reference libraries' test secret.
func ExampleSetHeaders() {
	key, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	webhook.SetHeaders(h, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body, key)
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		fmt.Printf("%s: %s\n", name, h.Get(name))
	}
	// Output:
	// webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek
	// webhook-timestamp: 1614265330
	// webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

// ExampleMetaHandshake answers the GET Meta sends when a webhook is
// subscribed.
func ExampleMetaHandshake() {
	src := webhook.Source{Scheme: webhook.SchemeMeta, Secrets: []string{"app secret"}, VerifyToken: "my verify token"}
	q, _ := url.ParseQuery("hub.mode=subscribe&hub.verify_token=my+verify+token&hub.challenge=1158201444")
	challenge, err := webhook.MetaHandshake(src, q)
	fmt.Println(challenge, err)
	// Output:
	// 1158201444 <nil>
}

// ExampleNewHTTPClient makes an outbound call that cannot reach the
// machine's own services, whatever the URL says.
func ExampleNewHTTPClient() {
	client := webhook.NewHTTPClient(webhook.Guard{}, 10*time.Second)
	_, err := client.Get("http://127.0.0.1:8080/admin")
	fmt.Println(errors.Is(err, webhook.ErrForbiddenAddress))
	fmt.Println(err)
	// Output:
	// true
	// Get "http://127.0.0.1:8080/admin": dial tcp 127.0.0.1:8080: forbidden address: 127.0.0.1 is in the loopback range 127.0.0.0/8
}

// ExampleGuard_Check shows which range an address falls in.
func ExampleGuard_Check() {
	for _, s := range []string{"8.8.8.8", "169.254.169.254", "::ffff:10.0.0.1", "2002:7f00:1::"} {
		fmt.Println(webhook.Guard{}.Check(netip.MustParseAddr(s)))
	}
	// Output:
	// <nil>
	// forbidden address: 169.254.169.254 is in the link-local (cloud metadata) range 169.254.0.0/16
	// forbidden address: ::ffff:10.0.0.1 is an IPv4-mapped address of 10.0.0.1, in the private range 10.0.0.0/8
	// forbidden address: 2002:7f00:1:: is a 6to4 address of 127.0.0.1, in the loopback range 127.0.0.0/8
}
