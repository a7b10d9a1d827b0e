package switchyard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchyard-dev/switchyard/internal/hub"
)

// Real-time topics: every node's subscribers see a topic's messages in one
// order, and a subscriber resumes from a Position (see internal/hub for
// offsets and epochs).
type (
	// Message is one message of a topic as subscribers receive it.
	Message = hub.Message
	// Position is a place in a topic's stream: resume from it.
	Position = hub.Position
	// Subscriber receives the messages of the topics it subscribes to,
	// all of one tenant; one per connection.
	Subscriber = hub.Subscriber
	// Replay is what a Subscribe answers: the messages missed since a
	// position, or a gap.
	Replay = hub.Replay
)

// Publish sends a message of type typ with data (encoded as JSON; a
// json.RawMessage is sent as it is) to topic in this client's tenant, on
// every node. It returns once the message is committed to the one order
// every node delivers in.
func (c *Client) Publish(ctx context.Context, topic, typ string, data any) error {
	raw, ok := data.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(data)
		if err != nil {
			return invalid("publish to %s: data: %v", topic, err)
		}
		raw = b
	}
	if err := c.hub.Publish(ctx, c.cfg.TenantID, topic, typ, raw); err != nil {
		return fmt.Errorf("switchyard: publish to %s: %w", topic, hubError(err))
	}
	return nil
}

// NewSubscriber returns a subscriber of this client's tenant's topics.
// Close it when done.
func (c *Client) NewSubscriber() *Subscriber {
	return c.hub.NewSubscriber(c.cfg.TenantID)
}

// hubError maps the hub's invalid input to ErrInvalidArgument.
func hubError(err error) error {
	if errors.Is(err, hub.ErrInvalid) {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return err
}
