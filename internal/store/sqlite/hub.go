package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// The hub's messages never touch the file: every Store that can hear them
// is in this process (see bus), so HubSend hands the payload to each of
// them directly, in one order, and nothing is ever stored. The payload is
// copied once into the notification and shared by every receiver.

// HubSend implements store.Hub: it delivers payload inline to the Listen
// function of every Store of this process on the same file, this one
// included, before it returns. Sends are serialised, so every receiver sees
// them in the same order.
func (s *Store) HubSend(ctx context.Context, payload []byte) error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: hub send: %w", ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: hub send: %w", err)
	}
	s.w.bus.hubSend(store.Notification{Kind: store.NotifyHub, Payload: string(payload)})
	return nil
}

// HubPayload implements store.Hub. Nothing is ever stored on SQLite, so
// every ref is unknown.
func (s *Store) HubPayload(ctx context.Context, ref int64) ([]byte, error) {
	return nil, fmt.Errorf("sqlite: hub payload %d: %w", ref, store.ErrNotFound)
}

// DeleteHubPayloadsBefore implements store.Hub; there is never anything to
// delete.
func (s *Store) DeleteHubPayloadsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	return 0, nil
}

// OpenSibling opens a second Store on the same file, without migrating it,
// as a second client in this process would (an API server beside an
// embedded worker). It hears this Store's notifications and hub messages
// and this Store hears its. Tests use it to stand for a second node.
func (s *Store) OpenSibling(ctx context.Context) (store.Store, error) {
	sib, err := Open(ctx, Config{Path: s.w.path, NoMigrate: true, Logger: s.log})
	if err != nil {
		return nil, err
	}
	return sib, nil
}
