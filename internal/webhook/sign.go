package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// secretPrefix marks a Standard Webhooks secret, so that it is recognisable
// (to people and to secret scanners) wherever it is pasted.
const secretPrefix = "whsec_"

// secretBytes is the size of new secrets: 192 bits, the least the Standard
// Webhooks specification recommends.
const secretBytes = 24

// NewSecret returns a new random Standard Webhooks secret: "whsec_" and the
// base64 of 24 random bytes.
func NewSecret() (string, error) {
	key := make([]byte, secretBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("webhook: new secret: %w", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// ParseSecret returns the signing key of a Standard Webhooks secret: the
// base64 after "whsec_". As in the reference libraries, the prefix may be
// left out. Errors never hold the secret.
func ParseSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook secret is not whsec_ followed by base64: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("webhook secret is empty after whsec_")
	}
	return key, nil
}

// Sign returns the webhook-signature header value of a Standard Webhooks
// delivery: "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for each key
// (as returned by ParseSecret), space-separated. Signing with the old and
// the new key while a secret is rotated keeps every receiver verifying.
func Sign(id string, ts time.Time, body []byte, secrets ...[]byte) string {
	timestamp := strconv.FormatInt(ts.Unix(), 10)
	signatures := make([]string, len(secrets))
	for i, key := range secrets {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(timestamp))
		mac.Write([]byte{'.'})
		mac.Write(body)
		signatures[i] = "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	return strings.Join(signatures, " ")
}

// SetHeaders sets webhook-id, webhook-timestamp and webhook-signature on h
// for a delivery of body. id must stay the same when the delivery is
// retried, so receivers can deduplicate; ts is the time of this attempt.
func SetHeaders(h http.Header, id string, ts time.Time, body []byte, secrets ...[]byte) {
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", Sign(id, ts, body, secrets...))
}
