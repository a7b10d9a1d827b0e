package switchyard

import (
	"context"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// RegisterSilentNode registers a worker node in c's tenant that never
// heartbeats, as a node that died right after starting would look.
func RegisterSilentNode(ctx context.Context, c *Client, id string) error {
	_, err := c.store.RegisterNode(ctx, store.NodeInfo{ID: id, TenantID: c.cfg.TenantID, Queues: []string{}, Hostname: "ghost"})
	return err
}
