package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Scheme names, as the API spells them.
const (
	// SchemeStandardWebhooks is https://www.standardwebhooks.com/ (also
	// sent by Svix and the services built on it).
	SchemeStandardWebhooks = "standard-webhooks"
	SchemeGitHub           = "github"
	SchemeStripe           = "stripe"
	// SchemeMeta covers Instagram, WhatsApp and Facebook (Messenger, Pages).
	SchemeMeta  = "meta"
	SchemeSlack = "slack"
	// SchemeHMAC is an HMAC over the body, configured field by field, for
	// senders with no scheme of their own here.
	SchemeHMAC = "hmac"
)

// DefaultTolerance is how far a signed timestamp may be from now, either
// way, when the source sets no Tolerance. It is the value Standard
// Webhooks, Stripe and Slack recommend.
const DefaultTolerance = 300 * time.Second

// DefaultEventType is the event type of hmac deliveries when the source
// sets no EventType, and of Standard Webhooks deliveries whose body has no
// "type".
const DefaultEventType = "webhook"

const (
	// maxSecrets bounds the secrets of a source: each one costs an HMAC
	// over the body on every request, and rotation needs two.
	maxSecrets = 10
	// maxNameBytes bounds delivery ids and event types taken from requests,
	// which end up in storage and in logs.
	maxNameBytes = 200
)

// Source is the verifier settings of one inbound source.
type Source struct {
	// Scheme is one of the Scheme constants. Required.
	Scheme string
	// Secrets are the active signing secrets; a signature made with any of
	// them is accepted, so a secret can be rotated without dropping
	// deliveries. At least one is required, at most 10. For
	// standard-webhooks they are "whsec_" followed by base64 (the prefix
	// may be left out); for the other schemes they are used as given.
	Secrets []string
	// Tolerance is how far the signed timestamp may be from now, either
	// way, for schemes that sign one (standard-webhooks, stripe, slack, and
	// hmac with a TimestampHeader). Default DefaultTolerance.
	Tolerance time.Duration

	// Header is the header carrying the signature. hmac only; required.
	Header string
	// Algorithm is the HMAC's hash: "sha1", "sha256" or "sha512". hmac
	// only; default "sha256".
	Algorithm string
	// Encoding of the signature: "hex" or "base64". hmac only; default
	// "hex". Hex is read in either case; base64 in the standard or the URL
	// alphabet, padded or not.
	Encoding string
	// Prefix is stripped from the header's value before decoding, such as
	// "sha256=". hmac only; matched case-insensitively.
	Prefix string
	// TimestampHeader, if set, is the header carrying the signing time in
	// unix seconds; the signed content is then "<timestamp>.<body>" and the
	// timestamp must be within Tolerance. hmac only.
	TimestampHeader string
	// IDHeader, if set, is the header carrying the delivery id. hmac only.
	IDHeader string
	// EventType is the type of every event from this source. hmac only;
	// default DefaultEventType.
	EventType string

	// VerifyToken is the token Meta sends in its GET subscription
	// handshake (see MetaHandshake). meta only; required.
	VerifyToken string
}

// Delivery is what a verified request says about itself.
type Delivery struct {
	// ID identifies the delivery, to deduplicate retries on: the sender's
	// delivery id where it sends one, else a hash of the signed content.
	ID string
	// Type is the event type, such as "github.push" or "stripe.invoice.paid".
	Type string
	// Time is the signed timestamp, in UTC, for schemes that sign one; the
	// zero time otherwise.
	Time time.Time
}

// Validate checks the settings, naming the field at fault. Verify calls it
// too, but checking when a source is saved reports mistakes early.
func (s Source) Validate() error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("webhook source: %w", err)
	}
	return nil
}

func (s Source) validate() error {
	switch s.Scheme {
	case SchemeStandardWebhooks, SchemeGitHub, SchemeStripe, SchemeMeta, SchemeSlack, SchemeHMAC:
	case "":
		return errors.New("scheme is required")
	default:
		return fmt.Errorf("scheme %q is not one of %s, %s, %s, %s, %s, %s", s.Scheme,
			SchemeStandardWebhooks, SchemeGitHub, SchemeStripe, SchemeMeta, SchemeSlack, SchemeHMAC)
	}
	if len(s.Secrets) == 0 {
		return errors.New("secrets: at least one secret is required")
	}
	if len(s.Secrets) > maxSecrets {
		return fmt.Errorf("secrets: at most %d secrets, got %d", maxSecrets, len(s.Secrets))
	}
	for i, secret := range s.Secrets {
		// The messages name the secret by position only: its value must not
		// reach logs.
		if secret == "" {
			return fmt.Errorf("secrets[%d] is empty", i)
		}
		if s.Scheme == SchemeStandardWebhooks {
			if _, err := ParseSecret(secret); err != nil {
				return fmt.Errorf("secrets[%d]: %w", i, err)
			}
		}
	}
	if s.Tolerance < 0 {
		return fmt.Errorf("tolerance must not be negative, got %s", s.Tolerance)
	}

	// Settings of another scheme are refused rather than ignored: a source
	// configured as github with a custom header most likely meant hmac.
	hmacOnly := []struct{ field, value string }{
		{"header", s.Header}, {"algorithm", s.Algorithm}, {"encoding", s.Encoding}, {"prefix", s.Prefix},
		{"timestamp_header", s.TimestampHeader}, {"id_header", s.IDHeader}, {"event_type", s.EventType},
	}
	if s.Scheme != SchemeHMAC {
		for _, f := range hmacOnly {
			if f.value != "" {
				return fmt.Errorf("%s is only for the %s scheme, not %s", f.field, SchemeHMAC, s.Scheme)
			}
		}
	}
	if s.Scheme != SchemeMeta && s.VerifyToken != "" {
		return fmt.Errorf("verify_token is only for the %s scheme, not %s", SchemeMeta, s.Scheme)
	}

	switch s.Scheme {
	case SchemeMeta:
		if s.VerifyToken == "" {
			return errors.New("verify_token is required: Meta sends it to confirm a subscription")
		}
	case SchemeHMAC:
		return s.validateHMAC()
	}
	return nil
}

func (s Source) validateHMAC() error {
	if s.Header == "" {
		return errors.New("header is required: the header carrying the signature")
	}
	for _, f := range []struct{ field, value string }{
		{"header", s.Header}, {"timestamp_header", s.TimestampHeader}, {"id_header", s.IDHeader},
	} {
		if f.value != "" && !ValidHeaderName(f.value) {
			return fmt.Errorf("%s %q is not a valid header name", f.field, f.value)
		}
	}
	if _, err := hmacHash(s.Algorithm); err != nil {
		return err
	}
	switch s.Encoding {
	case "", "hex", "base64":
	default:
		return fmt.Errorf("encoding %q is not hex or base64", s.Encoding)
	}
	if !printable(s.Prefix) {
		return errors.New("prefix contains control characters or invalid UTF-8")
	}
	if s.EventType != "" {
		if problem := nameProblem(s.EventType); problem != "" {
			return fmt.Errorf("event_type %s", problem)
		}
	}
	return nil
}

// Verify checks that the request with header h and raw body body was signed
// by src's sender, at a time close enough to now, and says which delivery
// it is. Errors wrap ErrMissingSignature, ErrBadSignature, ErrTimestamp or
// ErrMalformed; any other error means src itself is invalid.
//
// The signature is checked before the timestamp: the timestamp is part of
// the signed content, so ErrTimestamp then means an authentic request that
// is stale or replayed, not a forgery. The type and id are read only from
// verified requests.
func Verify(src Source, h http.Header, body []byte, now time.Time) (Delivery, error) {
	if err := src.Validate(); err != nil {
		return Delivery{}, err
	}
	switch src.Scheme {
	case SchemeStandardWebhooks:
		return verifyStandardWebhooks(src, h, body, now)
	case SchemeGitHub:
		return verifyGitHub(src, h, body)
	case SchemeStripe:
		return verifyStripe(src, h, body, now)
	case SchemeMeta:
		return verifyMeta(src, h, body)
	case SchemeSlack:
		return verifySlack(src, h, body, now)
	default: // SchemeHMAC; Validate refused anything else
		return verifyHMAC(src, h, body, now)
	}
}

func (s Source) tolerance() time.Duration {
	if s.Tolerance == 0 {
		return DefaultTolerance
	}
	return s.Tolerance
}

// matchAny reports whether any of the candidate signatures equals the MAC of
// content under any of keys. Every comparison is constant-time, so the time
// taken says nothing about how much of a forged signature was right.
func matchAny(newHash func() hash.Hash, keys [][]byte, content [][]byte, candidates [][]byte) bool {
	for _, key := range keys {
		mac := hmac.New(newHash, key)
		for _, part := range content {
			mac.Write(part)
		}
		want := mac.Sum(nil)
		for _, c := range candidates {
			if hmac.Equal(want, c) {
				return true
			}
		}
	}
	return false
}

// rawKeys is the secrets of schemes that use them as given.
func rawKeys(secrets []string) [][]byte {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = []byte(s)
	}
	return keys
}

// parseUnixTime reads a timestamp in unix seconds, as every scheme here
// sends it: digits only, so that "+1" or " 1" are not silently accepted.
func parseUnixTime(what, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: no %s", ErrMalformed, what)
	}
	if strings.Trim(s, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("%w: %s is not unix seconds", ErrMalformed, what)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is out of range", ErrMalformed, what)
	}
	return time.Unix(n, 0).UTC(), nil
}

// checkTimestamp refuses a signed time more than tolerance away from now.
// Time.Sub saturates, so absurd timestamps cannot overflow into range.
func checkTimestamp(ts, now time.Time, tolerance time.Duration) error {
	switch d := now.Sub(ts); {
	case d > tolerance:
		return fmt.Errorf("%w: signed %s ago, more than %s", ErrTimestamp, d.Truncate(time.Second), tolerance)
	case d < -tolerance:
		return fmt.Errorf("%w: signed %s in the future, more than %s", ErrTimestamp, (-d).Truncate(time.Second), tolerance)
	}
	return nil
}

// contentID is the delivery id of a sender that sends none: the hex SHA-256
// of the signed content, so a retry of the same request gets the same id.
func contentID(parts ...[]byte) string {
	sum := sha256.New()
	for _, p := range parts {
		sum.Write(p)
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// checkName checks an id or event type taken from a request, since it is
// stored and logged: not empty, not too long, no control characters.
func checkName(what, s string) error {
	if problem := nameProblem(s); problem != "" {
		return fmt.Errorf("%w: %s %s", ErrMalformed, what, problem)
	}
	return nil
}

// nameProblem says what is wrong with an id or event type, or "".
func nameProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > maxNameBytes:
		return fmt.Sprintf("is longer than %d bytes", maxNameBytes)
	case !printable(s):
		return "contains control characters or invalid UTF-8"
	}
	return ""
}

// eventType is prefix + name, with name checked.
func eventType(prefix, what, name string) (string, error) {
	if err := checkName(what, name); err != nil {
		return "", err
	}
	return prefix + name, nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// ValidHeaderName reports whether s is an RFC 9110 token, as a header's
// name must be.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
