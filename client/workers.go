package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// WorkerState is whether a worker node is online.
type WorkerState string

// The states of a worker node.
const (
	WorkerOnline  WorkerState = "online"  // registered and heartbeating
	WorkerOffline WorkerState = "offline" // its heartbeats stopped: it died or hangs
)

// Worker is a worker node (a process running the job engine: a server, or a
// program using the Go package) as the server shows it.
type Worker struct {
	ID       string      `json:"id"`
	State    WorkerState `json:"state"`
	Hostname string      `json:"hostname"`
	PID      int         `json:"pid"`
	// Queues it was configured with by name; empty for a node that only
	// works every queue (a server).
	Queues []string `json:"queues"`
	// AllQueues: it also works every other queue it finds.
	AllQueues bool `json:"all_queues"`
	// AllTenants: it works the queues of every tenant.
	AllTenants bool `json:"all_tenants"`
	// StartedAt is when it last registered, LastSeenAt its last heartbeat,
	// OfflineAt when it was declared offline (nil while online). Database
	// clock.
	StartedAt  time.Time  `json:"started_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	OfflineAt  *time.Time `json:"offline_at"`

	// Raw is the worker exactly as the server sent it, including fields
	// this version of the client does not know. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's worker shape, keeping a copy in Raw.
func (w *Worker) UnmarshalJSON(b []byte) error {
	type plain Worker
	*w = Worker{}
	if err := json.Unmarshal(b, (*plain)(w)); err != nil {
		return err
	}
	w.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// ListWorkers returns every worker node of the tenant (those configured
// with it; a server's nodes are the default tenant's), online and offline,
// in id order, following the server's pages if it has more than one.
func (c *Client) ListWorkers(ctx context.Context) ([]Worker, error) {
	all := []Worker{}
	seen := map[string]bool{}
	var q url.Values
	for {
		var page struct {
			Items      []Worker `json:"items"`
			NextCursor string   `json:"next_cursor"`
		}
		if _, err := c.do(ctx, http.MethodGet, "/v1/workers", q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		if seen[page.NextCursor] {
			return nil, errors.New("client: list workers: the server repeated a cursor")
		}
		seen[page.NextCursor] = true
		q = url.Values{"cursor": {page.NextCursor}}
	}
}
