package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// verifyStandardWebhooks follows https://www.standardwebhooks.com/: the
// signed content is "<id>.<timestamp>.<body>", and webhook-signature is a
// space-separated list of "v1,<base64 HMAC-SHA256>", any of which may match
// (the sender lists one per active secret while rotating).
func verifyStandardWebhooks(src Source, h http.Header, body []byte, now time.Time) (Delivery, error) {
	// Svix, which the standard came from, still sends svix-* headers (Clerk,
	// Resend and others): the same scheme under other names.
	prefix := "webhook-"
	if h.Get("webhook-signature") == "" && h.Get("svix-signature") != "" {
		prefix = "svix-"
	}
	signature := h.Get(prefix + "signature")
	if signature == "" {
		return Delivery{}, fmt.Errorf("%w: no webhook-signature header", ErrMissingSignature)
	}
	id := h.Get(prefix + "id")
	if id == "" {
		return Delivery{}, fmt.Errorf("%w: no %sid header", ErrMalformed, prefix)
	}
	timestamp := h.Get(prefix + "timestamp")
	ts, err := parseUnixTime(prefix+"timestamp", timestamp)
	if err != nil {
		return Delivery{}, err
	}

	var candidates [][]byte
	for _, entry := range strings.Fields(signature) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue // another version (v1a is asymmetric): not ours to check
		}
		if b, err := base64.StdEncoding.DecodeString(sig); err == nil {
			candidates = append(candidates, b)
		}
	}
	if len(candidates) == 0 {
		return Delivery{}, fmt.Errorf("%w: no v1 signature in %ssignature", ErrBadSignature, prefix)
	}
	keys := make([][]byte, len(src.Secrets))
	for i, s := range src.Secrets {
		keys[i], _ = ParseSecret(s) // Validate parsed them
	}
	// The timestamp is signed as sent, not as reformatted: a leading zero
	// would otherwise break an authentic signature.
	content := [][]byte{[]byte(id), {'.'}, []byte(timestamp), {'.'}, body}
	if !matchAny(sha256.New, keys, content, candidates) {
		return Delivery{}, ErrBadSignature
	}
	if err := checkTimestamp(ts, now, src.tolerance()); err != nil {
		return Delivery{}, err
	}
	if err := checkName(prefix+"id", id); err != nil {
		return Delivery{}, err
	}

	// The type is optional in the standard (the body need not even be
	// JSON); when the body has one, it is the event type.
	typ := DefaultEventType
	var fields struct {
		Type json.RawMessage `json:"type"`
	}
	if json.Unmarshal(body, &fields) == nil && len(fields.Type) > 0 {
		var s string
		if json.Unmarshal(fields.Type, &s) == nil {
			if err := checkName(`the body's "type"`, s); err != nil {
				return Delivery{}, err
			}
			typ = s
		}
	}
	return Delivery{ID: id, Type: typ, Time: ts}, nil
}

// verifyGitHub: X-Hub-Signature-256 is "sha256=" and the hex HMAC-SHA256 of
// the body. The type comes from X-GitHub-Event and the id from
// X-GitHub-Delivery, which stays the same when a delivery is redelivered.
func verifyGitHub(src Source, h http.Header, body []byte) (Delivery, error) {
	if err := checkHubSignature(src, h, body); err != nil {
		return Delivery{}, err
	}
	typ, err := eventType("github.", "X-GitHub-Event", h.Get("X-GitHub-Event"))
	if err != nil {
		return Delivery{}, err
	}
	id := h.Get("X-GitHub-Delivery")
	if err := checkName("X-GitHub-Delivery", id); err != nil {
		return Delivery{}, err
	}
	return Delivery{ID: id, Type: typ}, nil
}

// verifyMeta: Meta signs like GitHub, with the app secret. It sends no
// delivery id, so the id is the body's hash: a retry repeats the body
// exactly. The type is the body's "object": instagram, page,
// whatsapp_business_account and so on.
func verifyMeta(src Source, h http.Header, body []byte) (Delivery, error) {
	if err := checkHubSignature(src, h, body); err != nil {
		return Delivery{}, err
	}
	var fields struct {
		Object *string `json:"object"`
	}
	if err := json.Unmarshal(body, &fields); err != nil {
		return Delivery{}, fmt.Errorf("%w: the body is not a JSON object with a string \"object\"", ErrMalformed)
	}
	if fields.Object == nil {
		return Delivery{}, fmt.Errorf("%w: the body has no \"object\"", ErrMalformed)
	}
	typ, err := eventType("meta.", `the body's "object"`, *fields.Object)
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{ID: contentID(body), Type: typ}, nil
}

// checkHubSignature checks X-Hub-Signature-256, as GitHub and Meta send it.
// Both also send the SHA-1 X-Hub-Signature, which is not accepted: SHA-256
// is always there too.
func checkHubSignature(src Source, h http.Header, body []byte) error {
	value := h.Get("X-Hub-Signature-256")
	if value == "" {
		return fmt.Errorf("%w: no X-Hub-Signature-256 header", ErrMissingSignature)
	}
	hexSig, ok := strings.CutPrefix(value, "sha256=")
	if !ok {
		return fmt.Errorf("%w: X-Hub-Signature-256 does not start with sha256=", ErrMalformed)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: X-Hub-Signature-256 is not hex", ErrMalformed)
	}
	if !matchAny(sha256.New, rawKeys(src.Secrets), [][]byte{body}, [][]byte{sig}) {
		return ErrBadSignature
	}
	return nil
}

// verifyStripe: Stripe-Signature is "t=<unix>,v1=<hex>,..." with one v1
// per active secret (v0 is a test-mode scheme, ignored); the signed content
// is "<t>.<body>". The type and id are the event's own.
func verifyStripe(src Source, h http.Header, body []byte, now time.Time) (Delivery, error) {
	value := h.Get("Stripe-Signature")
	if value == "" {
		return Delivery{}, fmt.Errorf("%w: no Stripe-Signature header", ErrMissingSignature)
	}
	var timestamp string
	var candidates [][]byte
	for _, item := range strings.Split(value, ",") {
		key, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return Delivery{}, fmt.Errorf("%w: Stripe-Signature is not a list of key=value", ErrMalformed)
		}
		switch key {
		case "t":
			if timestamp != "" {
				return Delivery{}, fmt.Errorf("%w: Stripe-Signature has two timestamps", ErrMalformed)
			}
			timestamp = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				candidates = append(candidates, sig)
			}
		}
	}
	ts, err := parseUnixTime("the Stripe-Signature timestamp", timestamp)
	if err != nil {
		return Delivery{}, err
	}
	if len(candidates) == 0 {
		return Delivery{}, fmt.Errorf("%w: no v1 signature in Stripe-Signature", ErrBadSignature)
	}
	content := [][]byte{[]byte(timestamp), {'.'}, body}
	if !matchAny(sha256.New, rawKeys(src.Secrets), content, candidates) {
		return Delivery{}, ErrBadSignature
	}
	if err := checkTimestamp(ts, now, src.tolerance()); err != nil {
		return Delivery{}, err
	}

	var fields struct {
		ID   *string `json:"id"`
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(body, &fields); err != nil {
		return Delivery{}, fmt.Errorf(`%w: the body is not a JSON event with string "id" and "type"`, ErrMalformed)
	}
	if fields.Type == nil || fields.ID == nil {
		return Delivery{}, fmt.Errorf(`%w: the body has no "id" or no "type"`, ErrMalformed)
	}
	typ, err := eventType("stripe.", `the body's "type"`, *fields.Type)
	if err != nil {
		return Delivery{}, err
	}
	if err := checkName(`the body's "id"`, *fields.ID); err != nil {
		return Delivery{}, err
	}
	return Delivery{ID: *fields.ID, Type: typ, Time: ts}, nil
}

// verifySlack: X-Slack-Signature is "v0=" and the hex HMAC-SHA256 of
// "v0:<X-Slack-Request-Timestamp>:<body>". Events API bodies are JSON;
// slash commands and interactivity post forms.
func verifySlack(src Source, h http.Header, body []byte, now time.Time) (Delivery, error) {
	value := h.Get("X-Slack-Signature")
	if value == "" {
		return Delivery{}, fmt.Errorf("%w: no X-Slack-Signature header", ErrMissingSignature)
	}
	hexSig, ok := strings.CutPrefix(value, "v0=")
	if !ok {
		return Delivery{}, fmt.Errorf("%w: X-Slack-Signature does not start with v0=", ErrMalformed)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return Delivery{}, fmt.Errorf("%w: X-Slack-Signature is not hex", ErrMalformed)
	}
	timestamp := h.Get("X-Slack-Request-Timestamp")
	ts, err := parseUnixTime("X-Slack-Request-Timestamp", timestamp)
	if err != nil {
		return Delivery{}, err
	}
	content := [][]byte{[]byte("v0:"), []byte(timestamp), {':'}, body}
	if !matchAny(sha256.New, rawKeys(src.Secrets), content, [][]byte{sig}) {
		return Delivery{}, ErrBadSignature
	}
	if err := checkTimestamp(ts, now, src.tolerance()); err != nil {
		return Delivery{}, err
	}

	// Only Events API deliveries carry an id; Slack does not retry the
	// others, so the content's hash, timestamp included, tells two
	// identical commands apart.
	d := Delivery{ID: contentID([]byte(timestamp), []byte{'.'}, body), Time: ts}
	if mediaType, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mediaType == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return Delivery{}, fmt.Errorf("%w: the form body cannot be parsed", ErrMalformed)
		}
		switch {
		case form.Has("command"):
			d.Type = "slack.command"
		case form.Has("payload"):
			d.Type = "slack.interaction"
		default:
			return Delivery{}, fmt.Errorf(`%w: the form has neither "command" nor "payload"`, ErrMalformed)
		}
		return d, nil
	}

	var fields struct {
		Type    *string `json:"type"`
		EventID *string `json:"event_id"`
		Event   *struct {
			Type *string `json:"type"`
		} `json:"event"`
	}
	if err := json.Unmarshal(body, &fields); err != nil {
		return Delivery{}, fmt.Errorf(`%w: the body is not a JSON object with a string "type"`, ErrMalformed)
	}
	if fields.Type == nil {
		return Delivery{}, fmt.Errorf(`%w: the body has no "type"`, ErrMalformed)
	}
	name, what := *fields.Type, `the body's "type"`
	if name == "event_callback" {
		// The envelope's type says only that an event is inside; the
		// event's own type is what subscribers care about.
		if fields.Event == nil || fields.Event.Type == nil {
			return Delivery{}, fmt.Errorf(`%w: the event_callback has no "event" with a "type"`, ErrMalformed)
		}
		name, what = *fields.Event.Type, `the body's "event"."type"`
	}
	if d.Type, err = eventType("slack.", what, name); err != nil {
		return Delivery{}, err
	}
	if fields.EventID != nil {
		if err := checkName(`the body's "event_id"`, *fields.EventID); err != nil {
			return Delivery{}, err
		}
		d.ID = *fields.EventID
	}
	return d, nil
}

// verifyHMAC is the configurable scheme: see the hmac fields of Source.
func verifyHMAC(src Source, h http.Header, body []byte, now time.Time) (Delivery, error) {
	value := strings.TrimSpace(h.Get(src.Header))
	if value == "" {
		return Delivery{}, fmt.Errorf("%w: no %s header", ErrMissingSignature, http.CanonicalHeaderKey(src.Header))
	}
	if src.Prefix != "" {
		if len(value) < len(src.Prefix) || !strings.EqualFold(value[:len(src.Prefix)], src.Prefix) {
			return Delivery{}, fmt.Errorf("%w: %s does not start with the configured prefix", ErrMalformed, http.CanonicalHeaderKey(src.Header))
		}
		value = value[len(src.Prefix):]
	}
	sig, err := decodeSignature(src.Encoding, value)
	if err != nil {
		return Delivery{}, fmt.Errorf("%w: %s is %v", ErrMalformed, http.CanonicalHeaderKey(src.Header), err)
	}

	var d Delivery
	content := [][]byte{body}
	if src.TimestampHeader != "" {
		timestamp := h.Get(src.TimestampHeader)
		if d.Time, err = parseUnixTime(http.CanonicalHeaderKey(src.TimestampHeader), timestamp); err != nil {
			return Delivery{}, err
		}
		content = [][]byte{[]byte(timestamp), {'.'}, body}
	}
	newHash, _ := hmacHash(src.Algorithm) // Validate checked it
	if !matchAny(newHash, rawKeys(src.Secrets), content, [][]byte{sig}) {
		return Delivery{}, ErrBadSignature
	}
	if src.TimestampHeader != "" {
		if err := checkTimestamp(d.Time, now, src.tolerance()); err != nil {
			return Delivery{}, err
		}
	}

	d.ID = contentID(content...)
	if src.IDHeader != "" {
		if id := h.Get(src.IDHeader); id != "" {
			if err := checkName(http.CanonicalHeaderKey(src.IDHeader), id); err != nil {
				return Delivery{}, err
			}
			d.ID = id
		}
	}
	d.Type = src.EventType
	if d.Type == "" {
		d.Type = DefaultEventType
	}
	return d, nil
}

// hmacHash is the hash of an hmac source's Algorithm.
func hmacHash(algorithm string) (func() hash.Hash, error) {
	switch algorithm {
	case "", "sha256":
		return sha256.New, nil
	case "sha1":
		return sha1.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("algorithm %q is not sha1, sha256 or sha512", algorithm)
}

// decodeSignature decodes an hmac source's signature. Base64 is accepted in
// every common variant: the alphabet and padding carry no security, and
// senders differ.
func decodeSignature(encoding, s string) ([]byte, error) {
	if encoding == "" || encoding == "hex" {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, errors.New("not hex")
		}
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// maxChallengeBytes bounds the Meta handshake's challenge, which is echoed.
const maxChallengeBytes = 256

// MetaHandshake answers Meta's subscription handshake, a GET whose query q
// holds hub.mode=subscribe, hub.verify_token and hub.challenge: if the token
// is src.VerifyToken, it returns the challenge, which the handler must send
// back as the whole body of a 200 response (as text/plain, since the sender
// chose it). Errors wrap ErrMissingSignature, ErrBadSignature or
// ErrMalformed; any other error means src itself is invalid.
func MetaHandshake(src Source, q url.Values) (challenge string, err error) {
	if err := src.Validate(); err != nil {
		return "", err
	}
	if src.Scheme != SchemeMeta {
		return "", fmt.Errorf("webhook source: the Meta handshake needs the %s scheme, not %s", SchemeMeta, src.Scheme)
	}
	if mode := q.Get("hub.mode"); mode != "subscribe" {
		return "", fmt.Errorf("%w: hub.mode is not subscribe", ErrMalformed)
	}
	token := q.Get("hub.verify_token")
	if token == "" {
		return "", fmt.Errorf("%w: no hub.verify_token", ErrMissingSignature)
	}
	// Comparing hashes keeps the comparison constant-time in the tokens'
	// lengths too.
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(src.VerifyToken))
	if !hmac.Equal(got[:], want[:]) {
		return "", fmt.Errorf("%w: hub.verify_token is not the source's verify token", ErrBadSignature)
	}
	challenge = q.Get("hub.challenge")
	// Meta's challenges are numbers; anything else is refused rather than
	// echoed, so the endpoint cannot be made to serve chosen content.
	if challenge == "" || len(challenge) > maxChallengeBytes || strings.Trim(challenge, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.") != "" {
		return "", fmt.Errorf("%w: hub.challenge is missing or not a plain token", ErrMalformed)
	}
	return challenge, nil
}
