// Package webhook holds inbound webhook verification, outbound Standard
// Webhooks signing, and the SSRF guard for every outbound call.
//
// Inbound: Verify checks a request's signature under the scheme its sender
// uses (Standard Webhooks, GitHub, Stripe, Meta, Slack, or a configurable
// HMAC), over the raw body bytes, and says which delivery it is (the id to
// deduplicate on) and what type of event it carries. MetaHandshake answers
// Meta's subscription handshake.
//
// Outbound: NewSecret, Sign and SetHeaders produce Standard Webhooks
// signatures, which receivers can check with any of the reference
// libraries.
//
// SSRF: Guard refuses loopback, private, link-local and other non-public
// addresses. It checks the address actually dialled, after DNS resolution,
// so neither a name that resolves (or re-resolves) to an internal address
// nor a redirect can get around it. NewHTTPClient builds the client every
// outbound call should use.
package webhook

import "errors"

// Errors of Verify and MetaHandshake, for errors.Is. Their messages never
// hold a secret or the signature the request should have carried: they may
// be logged or shown to the sender.
var (
	// ErrMissingSignature: the request carries no signature (or no verify
	// token, for the Meta handshake).
	ErrMissingSignature = errors.New("missing webhook signature")
	// ErrBadSignature: the signature matches none of the source's secrets.
	ErrBadSignature = errors.New("webhook signature does not match")
	// ErrTimestamp: the signed timestamp is older, or further in the future,
	// than the source's tolerance allows, as a replayed request's would be.
	ErrTimestamp = errors.New("webhook timestamp outside the tolerance")
	// ErrMalformed: a header or the body cannot be read as the scheme
	// requires, such as an unparsable signature header or, once the
	// signature is verified, a body without the event type.
	ErrMalformed = errors.New("malformed webhook request")
)
