package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// Queue is a queue as the server shows it.
type Queue struct {
	Name   string `json:"name"`
	Paused bool   `json:"paused"` // a paused queue's jobs are not started
	// Concurrency is how many of the queue's jobs run at once on each node.
	Concurrency int         `json:"concurrency"`
	Counts      QueueCounts `json:"counts"`

	// Raw is the queue exactly as the server sent it, including fields this
	// version of the client does not know. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// QueueCounts is how many of a queue's jobs are in each state.
type QueueCounts struct {
	Scheduled int `json:"scheduled"`
	Available int `json:"available"`
	Running   int `json:"running"`
	Retryable int `json:"retryable"`
	Succeeded int `json:"succeeded"`
	Dead      int `json:"dead"`
	Cancelled int `json:"cancelled"`
}

// UnmarshalJSON decodes the API's queue shape, keeping a copy in Raw.
func (q *Queue) UnmarshalJSON(b []byte) error {
	type plain Queue
	*q = Queue{}
	if err := json.Unmarshal(b, (*plain)(q)); err != nil {
		return err
	}
	q.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// QueueUpdate is the settings UpdateQueue changes; nil fields keep their
// values.
type QueueUpdate struct {
	Concurrency *int  `json:"concurrency,omitempty"` // 1 to 10,000
	Paused      *bool `json:"paused,omitempty"`
}

// ListQueues returns every queue of the tenant, following the server's
// pages if it has more than one.
func (c *Client) ListQueues(ctx context.Context) ([]Queue, error) {
	all := []Queue{}
	seen := map[string]bool{}
	var q url.Values
	for {
		var page struct {
			Items      []Queue `json:"items"`
			NextCursor string  `json:"next_cursor"`
		}
		if _, err := c.do(ctx, http.MethodGet, "/v1/queues", q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		if seen[page.NextCursor] {
			return nil, errors.New("client: list queues: the server repeated a cursor")
		}
		seen[page.NextCursor] = true
		q = url.Values{"cursor": {page.NextCursor}}
	}
}

// PauseQueue stops the queue's jobs from being started (they can still be
// enqueued) and returns the queue.
func (c *Client) PauseQueue(ctx context.Context, name string) (*Queue, error) {
	return c.queueCall(ctx, http.MethodPost, name, "/pause", nil)
}

// ResumeQueue lets a paused queue's jobs start again and returns the queue.
func (c *Client) ResumeQueue(ctx context.Context, name string) (*Queue, error) {
	return c.queueCall(ctx, http.MethodPost, name, "/resume", nil)
}

// UpdateQueue changes the queue's settings given in u and returns the queue.
func (c *Client) UpdateQueue(ctx context.Context, name string, u QueueUpdate) (*Queue, error) {
	return c.queueCall(ctx, http.MethodPatch, name, "", u)
}

func (c *Client) queueCall(ctx context.Context, method, name, action string, in any) (*Queue, error) {
	if name == "" {
		return nil, errEmpty("queue name")
	}
	q := new(Queue)
	if _, err := c.do(ctx, method, "/v1/queues/"+url.PathEscape(name)+action, nil, in, q); err != nil {
		return nil, err
	}
	return q, nil
}
