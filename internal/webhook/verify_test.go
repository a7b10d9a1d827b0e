package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests sign with crypto directly, not with the package's code, so a
// mistake shared by signing and verifying would still show.

var testNow = time.Unix(1_700_000_000, 0).UTC()

const (
	oldSecret = "old-secret"
	newSecret = "new-secret"
)

// Standard Webhooks secrets and their keys.
var (
	swKeyOld    = []byte("0123456789abcdef01234567")
	swKeyNew    = []byte("fedcba9876543210fedcba98")
	swSecretOld = "whsec_" + base64.StdEncoding.EncodeToString(swKeyOld)
	swSecretNew = "whsec_" + base64.StdEncoding.EncodeToString(swKeyNew)
)

func mac(newHash func() hash.Hash, key []byte, content string) []byte {
	m := hmac.New(newHash, key)
	m.Write([]byte(content))
	return m.Sum(nil)
}

func hexMAC(key, content string) string {
	return hex.EncodeToString(mac(sha256.New, []byte(key), content))
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// Signed requests of each scheme, at time at.

func standardRequest(key []byte, id string, at time.Time, body string) http.Header {
	sig := base64.StdEncoding.EncodeToString(mac(sha256.New, key, id+"."+unix(at)+"."+body))
	return header("webhook-id", id, "webhook-timestamp", unix(at), "webhook-signature", "v1,"+sig)
}

func githubRequest(secret, event, delivery, body string) http.Header {
	return header("X-Hub-Signature-256", "sha256="+hexMAC(secret, body), "X-GitHub-Event", event, "X-GitHub-Delivery", delivery)
}

func stripeRequest(secret string, at time.Time, body string) http.Header {
	return header("Stripe-Signature", "t="+unix(at)+",v1="+hexMAC(secret, unix(at)+"."+body))
}

func metaRequest(secret, body string) http.Header {
	return header("X-Hub-Signature-256", "sha256="+hexMAC(secret, body))
}

func slackRequest(secret string, at time.Time, contentType, body string) http.Header {
	return header("X-Slack-Signature", "v0="+hexMAC(secret, "v0:"+unix(at)+":"+body),
		"X-Slack-Request-Timestamp", unix(at), "Content-Type", contentType)
}

// TestVerifyPublishedVectors checks each scheme against the examples its
// sender publishes, so the signed content is right byte for byte.
func TestVerifyPublishedVectors(t *testing.T) {
	t.Parallel()
	slackBody := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	cases := []struct {
		name string
		src  Source
		h    http.Header
		body string
		now  time.Time
		want Delivery
	}{
		{
			// The Standard Webhooks reference libraries' test vector.
			name: "standard-webhooks",
			src:  Source{Scheme: SchemeStandardWebhooks, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			h: header("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330",
				"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			body: `{"test": 2432232314}`,
			now:  time.Unix(1614265330, 0),
			want: Delivery{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Type: "webhook", Time: time.Unix(1614265330, 0).UTC()},
		},
		{
			// The same, as Svix-based senders name the headers.
			name: "standard-webhooks svix headers",
			src:  Source{Scheme: SchemeStandardWebhooks, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
			h: header("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "svix-timestamp", "1614265330",
				"svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			body: `{"test": 2432232314}`,
			now:  time.Unix(1614265330, 0),
			want: Delivery{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Type: "webhook", Time: time.Unix(1614265330, 0).UTC()},
		},
		{
			// docs.github.com, "Validating webhook deliveries".
			name: "github",
			src:  Source{Scheme: SchemeGitHub, Secrets: []string{"It's a Secret to Everybody"}},
			h: header("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
				"X-GitHub-Event", "ping", "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
			body: "Hello, World!",
			now:  testNow,
			want: Delivery{ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Type: "github.ping"},
		},
		{
			// docs.slack.dev, "Verifying requests from Slack".
			name: "slack",
			src:  Source{Scheme: SchemeSlack, Secrets: []string{"8f742231b10e8888abcd99yyyzzz85a5"}},
			h: header("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
				"X-Slack-Request-Timestamp", "1531420618", "Content-Type", "application/x-www-form-urlencoded"),
			body: slackBody,
			now:  time.Unix(1531420618+60, 0),
			want: Delivery{ID: sha256Hex("1531420618." + slackBody), Type: "slack.command", Time: time.Unix(1531420618, 0).UTC()},
		},
	}
	for _, tc := range cases {
		got, err := Verify(tc.src, tc.h, []byte(tc.body), tc.now)
		if err != nil || got != tc.want {
			t.Errorf("%s: Verify = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestVerifySchemes(t *testing.T) {
	t.Parallel()
	sw := Source{Scheme: SchemeStandardWebhooks, Secrets: []string{swSecretOld, swSecretNew}}
	gh := Source{Scheme: SchemeGitHub, Secrets: []string{oldSecret, newSecret}}
	stripe := Source{Scheme: SchemeStripe, Secrets: []string{oldSecret, newSecret}}
	meta := Source{Scheme: SchemeMeta, Secrets: []string{oldSecret, newSecret}, VerifyToken: "tok"}
	slack := Source{Scheme: SchemeSlack, Secrets: []string{oldSecret, newSecret}}
	signedAt := testNow.Add(-time.Minute)
	stripeBody := `{"id":"evt_1","type":"invoice.paid","data":{}}`
	metaBody := `{"object":"whatsapp_business_account","entry":[]}`
	slackEvent := `{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}`
	slackURLVerification := `{"type":"url_verification","challenge":"abc"}`
	interaction := "payload=%7B%22type%22%3A%22block_actions%22%7D"
	binary := "\x00\xff\xfe not JSON"
	cases := []struct {
		name string
		src  Source
		h    http.Header
		body string
		want Delivery
	}{
		{"standard-webhooks type from body, old secret", sw, standardRequest(swKeyOld, "msg_1", signedAt, `{"type":"invoice.paid"}`),
			`{"type":"invoice.paid"}`, Delivery{ID: "msg_1", Type: "invoice.paid", Time: signedAt}},
		{"standard-webhooks new secret", sw, standardRequest(swKeyNew, "msg_2", signedAt, `{"type":"a.b"}`),
			`{"type":"a.b"}`, Delivery{ID: "msg_2", Type: "a.b", Time: signedAt}},
		{"standard-webhooks non-JSON body", sw, standardRequest(swKeyOld, "msg_3", signedAt, binary),
			binary, Delivery{ID: "msg_3", Type: "webhook", Time: signedAt}},
		{"standard-webhooks non-string type", sw, standardRequest(swKeyOld, "msg_4", signedAt, `{"type":7}`),
			`{"type":7}`, Delivery{ID: "msg_4", Type: "webhook", Time: signedAt}},
		{"github", gh, githubRequest(newSecret, "push", "d-1", `{"ref":"main"}`),
			`{"ref":"main"}`, Delivery{ID: "d-1", Type: "github.push"}},
		{"github non-JSON body", gh, githubRequest(oldSecret, "ping", "d-2", binary),
			binary, Delivery{ID: "d-2", Type: "github.ping"}},
		{"stripe", stripe, stripeRequest(newSecret, signedAt, stripeBody),
			stripeBody, Delivery{ID: "evt_1", Type: "stripe.invoice.paid", Time: signedAt}},
		{"meta", meta, metaRequest(oldSecret, metaBody),
			metaBody, Delivery{ID: sha256Hex(metaBody), Type: "meta.whatsapp_business_account"}},
		{"slack event", slack, slackRequest(newSecret, signedAt, "application/json", slackEvent),
			slackEvent, Delivery{ID: "Ev08MFMKH6", Type: "slack.app_mention", Time: signedAt}},
		{"slack url_verification", slack, slackRequest(oldSecret, signedAt, "application/json", slackURLVerification),
			slackURLVerification, Delivery{ID: sha256Hex(unix(signedAt) + "." + slackURLVerification), Type: "slack.url_verification", Time: signedAt}},
		{"slack interaction", slack, slackRequest(oldSecret, signedAt, "application/x-www-form-urlencoded; charset=utf-8", interaction),
			interaction, Delivery{ID: sha256Hex(unix(signedAt) + "." + interaction), Type: "slack.interaction", Time: signedAt}},
	}
	for _, tc := range cases {
		got, err := Verify(tc.src, tc.h, []byte(tc.body), testNow)
		if err != nil || got != tc.want {
			t.Errorf("%s: Verify = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestVerifyStandardWebhooksSignatureList(t *testing.T) {
	t.Parallel()
	src := Source{Scheme: SchemeStandardWebhooks, Secrets: []string{swSecretNew}}
	body := `{"type":"x"}`
	good := standardRequest(swKeyNew, "msg_1", testNow, body).Get("webhook-signature")
	other := standardRequest(swKeyOld, "msg_1", testNow, body).Get("webhook-signature")
	for _, list := range []string{
		other + " " + good,
		"v1a,c29tZXRoaW5n " + good,
		"v2,xyz  v1,!!!notbase64 " + good,
		good + " " + other,
	} {
		h := header("webhook-id", "msg_1", "webhook-timestamp", unix(testNow), "webhook-signature", list)
		if _, err := Verify(src, h, []byte(body), testNow); err != nil {
			t.Errorf("signature list %q: %v", list, err)
		}
	}
	// The Standard Webhooks secret may come without its prefix.
	bare := Source{Scheme: SchemeStandardWebhooks, Secrets: []string{strings.TrimPrefix(swSecretNew, "whsec_")}}
	h := header("webhook-id", "msg_1", "webhook-timestamp", unix(testNow), "webhook-signature", good)
	if _, err := Verify(bare, h, []byte(body), testNow); err != nil {
		t.Errorf("secret without whsec_: %v", err)
	}
}

func TestVerifyHMAC(t *testing.T) {
	t.Parallel()
	body := `{"order":42}`
	signedAt := testNow.Add(100 * time.Second)
	cases := []struct {
		name string
		src  Source
		h    http.Header
		want Delivery
	}{
		{"defaults: sha256 hex",
			Source{Scheme: SchemeHMAC, Secrets: []string{oldSecret}, Header: "X-Signature"},
			header("X-Signature", hex.EncodeToString(mac(sha256.New, []byte(oldSecret), body))),
			Delivery{ID: sha256Hex(body), Type: "webhook"}},
		{"upper-case hex, prefix in another case, rotated secret",
			Source{Scheme: SchemeHMAC, Secrets: []string{oldSecret, newSecret}, Header: "x-sig", Prefix: "sha256="},
			header("X-Sig", "SHA256="+strings.ToUpper(hex.EncodeToString(mac(sha256.New, []byte(newSecret), body)))),
			Delivery{ID: sha256Hex(body), Type: "webhook"}},
		{"sha1 base64 with id header and event type",
			Source{Scheme: SchemeHMAC, Secrets: []string{oldSecret}, Header: "X-Sig", Algorithm: "sha1", Encoding: "base64",
				IDHeader: "X-Delivery", EventType: "shop.order"},
			header("X-Sig", base64.StdEncoding.EncodeToString(mac(sha1.New, []byte(oldSecret), body)), "X-Delivery", "del-9"),
			Delivery{ID: "del-9", Type: "shop.order"}},
		{"sha512 unpadded url-safe base64, id header absent",
			Source{Scheme: SchemeHMAC, Secrets: []string{oldSecret}, Header: "X-Sig", Algorithm: "sha512", Encoding: "base64",
				IDHeader: "X-Delivery"},
			header("X-Sig", base64.RawURLEncoding.EncodeToString(mac(sha512.New, []byte(oldSecret), body))),
			Delivery{ID: sha256Hex(body), Type: "webhook"}},
		{"timestamp header",
			Source{Scheme: SchemeHMAC, Secrets: []string{oldSecret}, Header: "X-Sig", TimestampHeader: "X-Timestamp"},
			header("X-Sig", hex.EncodeToString(mac(sha256.New, []byte(oldSecret), unix(signedAt)+"."+body)), "X-Timestamp", unix(signedAt)),
			Delivery{ID: sha256Hex(unix(signedAt) + "." + body), Type: "webhook", Time: signedAt}},
	}
	for _, tc := range cases {
		got, err := Verify(tc.src, tc.h, []byte(body), testNow)
		if err != nil || got != tc.want {
			t.Errorf("%s: Verify = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

// TestVerifyRefuses covers every way a request fails, and that no message
// gives away the signature the request should have had, or a secret.
func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	sw := Source{Scheme: SchemeStandardWebhooks, Secrets: []string{swSecretOld}}
	gh := Source{Scheme: SchemeGitHub, Secrets: []string{oldSecret}}
	stripe := Source{Scheme: SchemeStripe, Secrets: []string{oldSecret}}
	meta := Source{Scheme: SchemeMeta, Secrets: []string{oldSecret}, VerifyToken: "tok"}
	slack := Source{Scheme: SchemeSlack, Secrets: []string{oldSecret}}
	hmacTS := Source{Scheme: SchemeHMAC, Secrets: []string{oldSecret}, Header: "X-Sig", Prefix: "v1=", TimestampHeader: "X-Ts", IDHeader: "X-Id"}
	body := `{"type":"a","id":"evt_1","object":"page","event":{"type":"m"}}`
	old, future := testNow.Add(-301*time.Second), testNow.Add(301*time.Second)
	hmacSig := func(at time.Time, b string) string {
		return "v1=" + hex.EncodeToString(mac(sha256.New, []byte(oldSecret), unix(at)+"."+b))
	}
	without := func(h http.Header, name string) http.Header { h.Del(name); return h }
	with := func(h http.Header, kv ...string) http.Header {
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}

	cases := []struct {
		name string
		src  Source
		h    http.Header
		body string
		want error
	}{
		// Standard Webhooks.
		{"sw no signature", sw, without(standardRequest(swKeyOld, "m", testNow, body), "webhook-signature"), body, ErrMissingSignature},
		{"sw wrong key", sw, standardRequest(swKeyNew, "m", testNow, body), body, ErrBadSignature},
		{"sw tampered body", sw, standardRequest(swKeyOld, "m", testNow, body), body + " ", ErrBadSignature},
		{"sw other id", sw, with(standardRequest(swKeyOld, "m", testNow, body), "webhook-id", "n"), body, ErrBadSignature},
		{"sw no v1", sw, with(standardRequest(swKeyOld, "m", testNow, body), "webhook-signature", "v2,abc"), body, ErrBadSignature},
		{"sw no id", sw, without(standardRequest(swKeyOld, "m", testNow, body), "webhook-id"), body, ErrMalformed},
		{"sw no timestamp", sw, without(standardRequest(swKeyOld, "m", testNow, body), "webhook-timestamp"), body, ErrMalformed},
		{"sw timestamp not a number", sw, with(standardRequest(swKeyOld, "m", testNow, body), "webhook-timestamp", "1e9"), body, ErrMalformed},
		{"sw expired", sw, standardRequest(swKeyOld, "m", old, body), body, ErrTimestamp},
		{"sw future", sw, standardRequest(swKeyOld, "m", future, body), body, ErrTimestamp},
		{"sw id with control characters", sw, standardRequest(swKeyOld, "m\x01", testNow, body), body, ErrMalformed},
		// GitHub.
		{"github no signature", gh, header("X-GitHub-Event", "push", "X-GitHub-Delivery", "d"), body, ErrMissingSignature},
		{"github only sha1", gh, header("X-Hub-Signature", "sha1=00", "X-GitHub-Event", "push"), body, ErrMissingSignature},
		{"github wrong secret", gh, githubRequest(newSecret, "push", "d", body), body, ErrBadSignature},
		{"github no prefix", gh, with(githubRequest(oldSecret, "push", "d", body), "X-Hub-Signature-256", hexMAC(oldSecret, body)), body, ErrMalformed},
		{"github not hex", gh, with(githubRequest(oldSecret, "push", "d", body), "X-Hub-Signature-256", "sha256=zz"), body, ErrMalformed},
		{"github no delivery id", gh, without(githubRequest(oldSecret, "push", "d", body), "X-GitHub-Delivery"), body, ErrMalformed},
		{"github no event", gh, without(githubRequest(oldSecret, "push", "d", body), "X-GitHub-Event"), body, ErrMalformed},
		// Stripe.
		{"stripe no signature", stripe, header(), body, ErrMissingSignature},
		{"stripe wrong secret", stripe, stripeRequest(newSecret, testNow, body), body, ErrBadSignature},
		{"stripe no timestamp", stripe, header("Stripe-Signature", "v1="+hexMAC(oldSecret, "."+body)), body, ErrMalformed},
		{"stripe two timestamps", stripe, header("Stripe-Signature", "t=1,t=2,v1=00"), body, ErrMalformed},
		{"stripe not key=value", stripe, header("Stripe-Signature", "garbage"), body, ErrMalformed},
		{"stripe only v0", stripe, header("Stripe-Signature", "t="+unix(testNow)+",v0="+hexMAC(oldSecret, unix(testNow)+"."+body)), body, ErrBadSignature},
		{"stripe expired", stripe, stripeRequest(oldSecret, old, body), body, ErrTimestamp},
		{"stripe future", stripe, stripeRequest(oldSecret, future, body), body, ErrTimestamp},
		{"stripe body not JSON", stripe, stripeRequest(oldSecret, testNow, "nope"), "nope", ErrMalformed},
		{"stripe body without type", stripe, stripeRequest(oldSecret, testNow, `{"id":"evt_1"}`), `{"id":"evt_1"}`, ErrMalformed},
		{"stripe body without id", stripe, stripeRequest(oldSecret, testNow, `{"type":"a"}`), `{"type":"a"}`, ErrMalformed},
		{"stripe forged and not JSON", stripe, stripeRequest(newSecret, testNow, "nope"), "nope", ErrBadSignature},
		// Meta.
		{"meta no signature", meta, header(), body, ErrMissingSignature},
		{"meta wrong secret", meta, metaRequest(newSecret, body), body, ErrBadSignature},
		{"meta body not JSON", meta, metaRequest(oldSecret, "x"), "x", ErrMalformed},
		{"meta no object", meta, metaRequest(oldSecret, `{"entry":[]}`), `{"entry":[]}`, ErrMalformed},
		{"meta object not a string", meta, metaRequest(oldSecret, `{"object":1}`), `{"object":1}`, ErrMalformed},
		{"meta empty object", meta, metaRequest(oldSecret, `{"object":""}`), `{"object":""}`, ErrMalformed},
		// Slack.
		{"slack no signature", slack, without(slackRequest(oldSecret, testNow, "application/json", body), "X-Slack-Signature"), body, ErrMissingSignature},
		{"slack wrong secret", slack, slackRequest(newSecret, testNow, "application/json", body), body, ErrBadSignature},
		{"slack no v0", slack, with(slackRequest(oldSecret, testNow, "application/json", body), "X-Slack-Signature", "v1=00"), body, ErrMalformed},
		{"slack no timestamp", slack, without(slackRequest(oldSecret, testNow, "application/json", body), "X-Slack-Request-Timestamp"), body, ErrMalformed},
		{"slack expired", slack, slackRequest(oldSecret, old, "application/json", body), body, ErrTimestamp},
		{"slack future", slack, slackRequest(oldSecret, future, "application/json", body), body, ErrTimestamp},
		{"slack body not JSON", slack, slackRequest(oldSecret, testNow, "application/json", "x"), "x", ErrMalformed},
		{"slack event_callback without event", slack, slackRequest(oldSecret, testNow, "application/json", `{"type":"event_callback"}`), `{"type":"event_callback"}`, ErrMalformed},
		{"slack form without command or payload", slack, slackRequest(oldSecret, testNow, "application/x-www-form-urlencoded", "a=b"), "a=b", ErrMalformed},
		{"slack bad form", slack, slackRequest(oldSecret, testNow, "application/x-www-form-urlencoded", "a=%zz"), "a=%zz", ErrMalformed},
		// hmac.
		{"hmac no signature", hmacTS, header("X-Ts", unix(testNow)), body, ErrMissingSignature},
		{"hmac wrong prefix", hmacTS, header("X-Sig", "v2=00", "X-Ts", unix(testNow)), body, ErrMalformed},
		{"hmac not hex", hmacTS, header("X-Sig", "v1=xyz", "X-Ts", unix(testNow)), body, ErrMalformed},
		{"hmac no timestamp", hmacTS, header("X-Sig", hmacSig(testNow, body)), body, ErrMalformed},
		{"hmac unsigned timestamp", hmacTS, header("X-Sig", "v1="+hexMAC(oldSecret, body), "X-Ts", unix(testNow)), body, ErrBadSignature},
		{"hmac expired", hmacTS, header("X-Sig", hmacSig(old, body), "X-Ts", unix(old)), body, ErrTimestamp},
		{"hmac future", hmacTS, header("X-Sig", hmacSig(future, body), "X-Ts", unix(future)), body, ErrTimestamp},
		{"hmac id too long", hmacTS, header("X-Sig", hmacSig(testNow, body), "X-Ts", unix(testNow), "X-Id", strings.Repeat("x", 201)), body, ErrMalformed},
	}
	secrets := []string{oldSecret, newSecret, swSecretOld, swSecretNew, strings.TrimPrefix(swSecretOld, "whsec_")}
	for _, tc := range cases {
		_, err := Verify(tc.src, tc.h, []byte(tc.body), testNow)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error %q holds a secret", tc.name, err)
			}
		}
		for _, leak := range expectedSignatures(tc.src, tc.h, tc.body) {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: the error %q holds the expected signature", tc.name, err)
			}
		}
	}
}

// expectedSignatures are encodings of the signatures a request to src with
// body should carry, whatever the content signed: a message holding any of
// them would let a forger copy it.
func expectedSignatures(src Source, h http.Header, body string) []string {
	var keys [][]byte
	for _, s := range src.Secrets {
		keys = append(keys, []byte(s))
		if k, err := ParseSecret(s); err == nil {
			keys = append(keys, k)
		}
	}
	contents := []string{body}
	for _, ts := range []string{h.Get("webhook-timestamp"), h.Get("X-Slack-Request-Timestamp"), h.Get("X-Ts"), unix(testNow)} {
		contents = append(contents, ts+"."+body, "v0:"+ts+":"+body, h.Get("webhook-id")+"."+ts+"."+body)
	}
	var out []string
	for _, k := range keys {
		for _, c := range contents {
			m := mac(sha256.New, k, c)
			out = append(out, hex.EncodeToString(m), base64.StdEncoding.EncodeToString(m))
		}
	}
	return out
}

func TestVerifyTolerance(t *testing.T) {
	t.Parallel()
	body := `{"type":"x"}`
	for _, tc := range []struct {
		tolerance time.Duration
		age       time.Duration
		ok        bool
	}{
		{0, 300 * time.Second, true},
		{0, -300 * time.Second, true},
		{0, 301 * time.Second, false},
		{time.Hour, 59 * time.Minute, true},
		{time.Hour, -59 * time.Minute, true},
		{time.Hour, 61 * time.Minute, false},
		{10 * time.Second, 11 * time.Second, false},
		{10 * time.Second, -11 * time.Second, false},
	} {
		src := Source{Scheme: SchemeStandardWebhooks, Secrets: []string{swSecretOld}, Tolerance: tc.tolerance}
		at := testNow.Add(-tc.age)
		_, err := Verify(src, standardRequest(swKeyOld, "m", at, body), []byte(body), testNow)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrTimestamp) {
			t.Errorf("tolerance %s, signed %s ago: err = %v", tc.tolerance, tc.age, err)
		}
	}
	// Timestamps far outside time's range cannot overflow into the window.
	src := Source{Scheme: SchemeStripe, Secrets: []string{oldSecret}}
	huge := strconv.FormatInt(1<<62, 10)
	h := header("Stripe-Signature", "t="+huge+",v1="+hexMAC(oldSecret, huge+".{}"))
	if _, err := Verify(src, h, []byte("{}"), testNow); !errors.Is(err, ErrTimestamp) {
		t.Errorf("huge timestamp: err = %v", err)
	}
}

func TestSourceValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		src  Source
		want string // "" for valid
	}{
		{Source{Scheme: SchemeGitHub, Secrets: []string{"s"}}, ""},
		{Source{Scheme: SchemeStandardWebhooks, Secrets: []string{swSecretOld, swSecretNew}, Tolerance: time.Minute}, ""},
		{Source{Scheme: SchemeMeta, Secrets: []string{"s"}, VerifyToken: "t"}, ""},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}, Header: "X-Sig", Algorithm: "sha512", Encoding: "base64",
			Prefix: "sha512=", TimestampHeader: "X-Ts", IDHeader: "X-Id", EventType: "shop.order"}, ""},
		{Source{Secrets: []string{"s"}}, "scheme is required"},
		{Source{Scheme: "gitlab", Secrets: []string{"s"}}, `scheme "gitlab" is not one of`},
		{Source{Scheme: SchemeGitHub}, "secrets: at least one"},
		{Source{Scheme: SchemeGitHub, Secrets: make([]string, 11)}, "at most 10"},
		{Source{Scheme: SchemeGitHub, Secrets: []string{"s", ""}}, "secrets[1] is empty"},
		{Source{Scheme: SchemeStandardWebhooks, Secrets: []string{"whsec_not base64!"}}, "secrets[0]: webhook secret is not whsec_ followed by base64"},
		{Source{Scheme: SchemeStandardWebhooks, Secrets: []string{"whsec_"}}, "secrets[0]: webhook secret is empty"},
		{Source{Scheme: SchemeSlack, Secrets: []string{"s"}, Tolerance: -time.Second}, "tolerance must not be negative"},
		{Source{Scheme: SchemeGitHub, Secrets: []string{"s"}, Header: "X-Sig"}, "header is only for the hmac scheme"},
		{Source{Scheme: SchemeStripe, Secrets: []string{"s"}, EventType: "x"}, "event_type is only for the hmac scheme"},
		{Source{Scheme: SchemeSlack, Secrets: []string{"s"}, VerifyToken: "t"}, "verify_token is only for the meta scheme"},
		{Source{Scheme: SchemeMeta, Secrets: []string{"s"}}, "verify_token is required"},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}}, "header is required"},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}, Header: "X Sig"}, `header "X Sig" is not a valid header name`},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}, Header: "X-Sig", TimestampHeader: "a:b"}, "timestamp_header"},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}, Header: "X-Sig", IDHeader: "a\nb"}, "id_header"},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}, Header: "X-Sig", Algorithm: "md5"}, `algorithm "md5" is not sha1, sha256 or sha512`},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}, Header: "X-Sig", Encoding: "base32"}, `encoding "base32" is not hex or base64`},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}, Header: "X-Sig", Prefix: "a\x00"}, "prefix contains control characters"},
		{Source{Scheme: SchemeHMAC, Secrets: []string{"s"}, Header: "X-Sig", EventType: strings.Repeat("x", 201)}, "event_type is longer than 200 bytes"},
	}
	for _, tc := range cases {
		err := tc.src.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.src, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err = %v, want one mentioning %q", tc.src, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "not base64!"):
			t.Errorf("the error %q holds the secret", err)
		}
		if tc.want != "" {
			// Verify refuses an invalid source, with none of the request
			// errors: the fault is the configuration's, not the sender's.
			_, verr := Verify(tc.src, http.Header{}, nil, testNow)
			for _, sentinel := range []error{ErrMissingSignature, ErrBadSignature, ErrTimestamp, ErrMalformed} {
				if verr == nil || errors.Is(verr, sentinel) {
					t.Errorf("%+v: Verify err = %v", tc.src, verr)
				}
			}
		}
	}
}

func TestMetaHandshake(t *testing.T) {
	t.Parallel()
	src := Source{Scheme: SchemeMeta, Secrets: []string{"s"}, VerifyToken: "my-token"}
	query := func(mode, token, challenge string) url.Values {
		q := url.Values{}
		for k, v := range map[string]string{"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge} {
			if v != "" {
				q.Set(k, v)
			}
		}
		return q
	}
	got, err := MetaHandshake(src, query("subscribe", "my-token", "1158201444"))
	if err != nil || got != "1158201444" {
		t.Fatalf("MetaHandshake = %q, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		q    url.Values
		want error
	}{
		{"wrong mode", query("unsubscribe", "my-token", "1"), ErrMalformed},
		{"no mode", query("", "my-token", "1"), ErrMalformed},
		{"no token", query("subscribe", "", "1"), ErrMissingSignature},
		{"wrong token", query("subscribe", "my-token2", "1"), ErrBadSignature},
		{"token prefix", query("subscribe", "my-toke", "1"), ErrBadSignature},
		{"no challenge", query("subscribe", "my-token", ""), ErrMalformed},
		{"markup challenge", query("subscribe", "my-token", "<script>"), ErrMalformed},
		{"long challenge", query("subscribe", "my-token", strings.Repeat("1", 257)), ErrMalformed},
	} {
		got, err := MetaHandshake(src, tc.q)
		if got != "" || !errors.Is(err, tc.want) {
			t.Errorf("%s: MetaHandshake = %q, %v; want %v", tc.name, got, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "my-token") {
			t.Errorf("%s: the error %q holds the verify token", tc.name, err)
		}
	}
	if _, err := MetaHandshake(Source{Scheme: SchemeGitHub, Secrets: []string{"s"}}, query("subscribe", "x", "1")); err == nil {
		t.Error("MetaHandshake accepted a github source")
	}
}
