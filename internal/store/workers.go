package store

import (
	"context"
	"time"
)

// NodeInfo is one worker node in the registry: a process running the job
// engine (a runner). Nodes register when they start, heartbeat while they
// run, and leave when they stop; the maintenance leader declares offline
// the nodes whose heartbeats stopped (MarkNodesOffline).
type NodeInfo struct {
	ID string
	// TenantID is the tenant the node was configured with: its worker
	// events go to that tenant's workers topic, and it is listed there.
	TenantID string
	// AllTenants: the node works every tenant's queues (a server).
	AllTenants bool
	// Queues the node was configured with by name; never nil.
	Queues []string
	// AllQueues: the node also works every other queue it finds.
	AllQueues bool
	Hostname  string
	PID       int
	// Timeout is how long the node may go without a heartbeat before it
	// counts as offline; it heartbeats several times within it. Nodes may
	// heartbeat at different rates, so each says its own. 0: only the
	// silentFor of MarkNodesOffline applies.
	Timeout time.Duration
	// Set by the store, from the database clock.
	StartedAt  time.Time // when it last registered
	LastSeenAt time.Time // its last registration or heartbeat
	OfflineAt  time.Time // zero while online
}

// Workers is the part of the Store that keeps the registry of worker
// nodes, and rescues the jobs of nodes that died.
type Workers interface {
	// RegisterNode records n as online now (StartedAt and LastSeenAt are
	// the database's now, OfflineAt cleared), replacing any row with its
	// id, and returns it as stored.
	RegisterNode(ctx context.Context, n NodeInfo) (NodeInfo, error)

	// HeartbeatNode records that an online node is alive now. ErrNotFound
	// if no online node has the id (it was declared offline, or never
	// registered): the node should register again.
	HeartbeatNode(ctx context.Context, nodeID string) error

	// ListNodes lists the nodes configured with tenantID ("" for every
	// tenant), online and offline, in id order.
	ListNodes(ctx context.Context, tenantID string) ([]NodeInfo, error)

	// MarkNodesOffline declares offline every online node whose last
	// heartbeat is older than both silentFor and its own Timeout (database
	// clock), and returns them with OfflineAt set. It is atomic across processes: of concurrent
	// callers, exactly one gets each node.
	MarkNodesOffline(ctx context.Context, silentFor time.Duration) ([]NodeInfo, error)

	// DeleteNode removes a node (one that stops gracefully) and returns it
	// as it was, so the caller can tell whether it was still online;
	// ErrNotFound if there is none.
	DeleteNode(ctx context.Context, nodeID string) (NodeInfo, error)

	// PruneNodes deletes nodes offline for longer than offlineFor and
	// reports how many.
	PruneNodes(ctx context.Context, offlineFor time.Duration) (int, error)

	// RescueExpiredJobs is RescueExpired answering the jobs it moved
	// instead of their number, so that the engine can announce each: a
	// job's State is its new one (retryable, or dead when out of
	// attempts), RunAt its retry time when retryable; Attempt,
	// MaxAttempts and the identifying fields are as they were. Other
	// fields may be stale.
	RescueExpiredJobs(ctx context.Context, limit int, retryAt func(*Job) time.Duration) (jobs []*Job, next time.Duration, err error)
}
