package store

import (
	"context"
	"time"
)

// NotifyHub carries a real-time hub payload (see Hub): inline in Payload,
// or stored, with its id in HubRef, when it was too large for the
// notification channel. Hub notifications reach every Listen function on
// the store, the sender's included, in one order, the same everywhere.
const NotifyHub = "hub"

// Hub is the part of the Store that carries the real-time hub's messages
// between the processes sharing the store. The hub (package internal/hub)
// builds on one property: every process sees hub payloads in one total
// order, so that each can number a topic's messages itself and every node's
// subscribers see them in the same order.
type Hub interface {
	// HubSend broadcasts payload, an opaque byte string, as a NotifyHub to
	// every Listen function on the store (every node on PostgreSQL, every
	// Store of this process on the file on SQLite), this Store's included:
	// the sender hears its own sends through the same path as everyone
	// else, never earlier. Sends reach every listener in one total order
	// (on PostgreSQL the commit order of their NOTIFYs). It returns once
	// the payload is committed to that order. A payload that cannot travel
	// inline (PostgreSQL: 8000 bytes or more, or not valid UTF-8 text) is
	// stored and the notification carries its id in HubRef instead; it can
	// be read with HubPayload for a few minutes (see
	// DeleteHubPayloadsBefore). Like every notification, one may be lost
	// when a connection drops, which NotifyResync then reports.
	HubSend(ctx context.Context, payload []byte) error

	// HubPayload returns the payload stored under ref by a HubSend;
	// ErrNotFound if there is none (it was swept, or never stored).
	HubPayload(ctx context.Context, ref int64) ([]byte, error)

	// DeleteHubPayloadsBefore deletes up to limit (<= 0: no limit) stored
	// hub payloads stored before before, and reports how many.
	DeleteHubPayloadsBefore(ctx context.Context, before time.Time, limit int) (int, error)
}
