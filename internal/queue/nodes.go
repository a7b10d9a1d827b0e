package queue

import (
	"context"
	"errors"
	"os"
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// The worker registry: a runner registers its node when it starts (and
// announces worker.online), heartbeats it on the maintainer's periodic
// wake-ups (no timer of its own: an idle node still wakes once per tick),
// and deletes it when it stops gracefully (worker.offline). The leader
// declares offline the nodes whose heartbeats stopped (their processes
// died or hang) and announces worker.offline for each, once across all
// nodes.

// nodeInfo describes this runner's node for the registry.
func (r *Runner) nodeInfo() store.NodeInfo {
	host, _ := os.Hostname()
	qs := make([]string, 0, len(r.cfg.Queues))
	for name := range r.cfg.Queues {
		qs = append(qs, name)
	}
	slices.Sort(qs)
	return store.NodeInfo{
		ID:         r.cfg.NodeID,
		TenantID:   r.cfg.TenantID,
		AllTenants: r.cfg.AllTenants,
		Queues:     qs,
		AllQueues:  r.cfg.AllQueues || r.cfg.AllTenants,
		Hostname:   host,
		PID:        os.Getpid(),
		Timeout:    r.cfg.Maintenance.NodeTimeout,
	}
}

// register records this node as online and announces it.
func (r *Runner) register(ctx context.Context) error {
	n, err := r.cfg.Store.RegisterNode(ctx, r.nodeInfo())
	if err != nil {
		return err
	}
	r.emit(Event{Type: EventWorkerOnline, TenantID: n.TenantID, Node: &n})
	return nil
}

// unregister removes this node at a graceful stop and announces it, unless
// the leader had declared it offline already (and announced that).
func (r *Runner) unregister(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n, err := r.cfg.Store.DeleteNode(ctx, r.cfg.NodeID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return
	case err != nil:
		r.log.Error("queue: unregister node", "node", r.cfg.NodeID, "err", err)
		// It will be declared offline when its heartbeats are missed.
		return
	case n.OfflineAt.IsZero():
		r.emit(Event{Type: EventWorkerOffline, TenantID: n.TenantID, Node: &n})
	}
}

// heartbeatNode tells the registry this node is alive. A node the leader
// declared offline (it stalled, or lost the database for a while) registers
// again and is announced online again.
func (r *Runner) heartbeatNode(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := r.cfg.Store.HeartbeatNode(ctx, r.cfg.NodeID)
	if errors.Is(err, store.ErrNotFound) {
		r.log.Warn("queue: this node was declared offline; registering again", "node", r.cfg.NodeID)
		err = r.register(ctx)
	}
	if err != nil {
		r.log.Error("queue: node heartbeat", "node", r.cfg.NodeID, "err", err)
	}
}

// markDeadNodes is the leader's: it declares offline the nodes whose
// heartbeats stopped, announces each, and prunes nodes long gone.
func (m *maintainer) markDeadNodes() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := m.r.cfg.Store.MarkNodesOffline(ctx, m.cfg.NodeTimeout)
	if err != nil {
		m.r.log.Error("queue: find dead nodes", "err", err)
		return
	}
	for i := range ns {
		n := &ns[i]
		m.r.log.Warn("queue: node stopped heartbeating; declared offline", "node", n.ID, "last_seen", n.LastSeenAt)
		m.r.emit(Event{Type: EventWorkerOffline, TenantID: n.TenantID, Node: n})
	}
}
