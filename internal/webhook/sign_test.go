package webhook

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSignPublishedVector reproduces the Standard Webhooks reference
// libraries' test vector: a receiver using any of them accepts what Sign
// produces.
func TestSignPublishedVector(t *testing.T) {
	t.Parallel()
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`), key)
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestSignVerifies(t *testing.T) {
	t.Parallel()
	oldS, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	newS, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	oldKey, _ := ParseSecret(oldS)
	newKey, _ := ParseSecret(newS)
	body := []byte(`{"type":"job.succeeded","data":{"id":"j1"}}`)
	ts := time.Unix(1_700_000_000, 0)

	h := http.Header{}
	SetHeaders(h, "msg_1", ts, body, oldKey, newKey)
	if got := strings.Fields(h.Get("webhook-signature")); len(got) != 2 {
		t.Fatalf("webhook-signature = %q, want two signatures", h.Get("webhook-signature"))
	}
	// Receivers that know either secret, or both, accept the delivery.
	for _, secrets := range [][]string{{oldS}, {newS}, {oldS, newS}} {
		d, err := Verify(Source{Scheme: SchemeStandardWebhooks, Secrets: secrets}, h, body, ts.Add(time.Second))
		want := Delivery{ID: "msg_1", Type: "job.succeeded", Time: ts.UTC()}
		if err != nil || d != want {
			t.Errorf("Verify with %d secrets = %+v, %v; want %+v", len(secrets), d, err, want)
		}
	}
	if _, err := Verify(Source{Scheme: SchemeStandardWebhooks, Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("another key"))}}, h, body, ts); err == nil {
		t.Error("a receiver with another secret accepted the delivery")
	}
	if got := Sign("msg_1", ts, body); got != "" {
		t.Errorf("Sign without keys = %q, want empty", got)
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b || !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("NewSecret = %q, %q", a, b)
	}
	key, err := ParseSecret(a)
	if err != nil || len(key) != 24 {
		t.Fatalf("ParseSecret(NewSecret()) = %d bytes, %v", len(key), err)
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	want := []byte("0123456789abcdef01234567")
	enc := base64.StdEncoding.EncodeToString(want)
	for _, s := range []string{"whsec_" + enc, enc} {
		if got, err := ParseSecret(s); err != nil || !bytes.Equal(got, want) {
			t.Errorf("ParseSecret(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "whsec_", "whsec_%%%%", "whsec_" + enc[:len(enc)-1]} {
		if _, err := ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) succeeded", s)
		} else if len(s) > len("whsec_") && strings.Contains(err.Error(), s[len("whsec_"):]) {
			t.Errorf("ParseSecret(%q): the error %q holds the secret", s, err)
		}
	}
}
