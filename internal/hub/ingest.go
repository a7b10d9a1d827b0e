package hub

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// ingestLoop delivers what Notify queued, in order. Fetching a stored
// payload happens here, never on the store's listener goroutine, and holds
// back the notifications behind it, so order is kept.
func (h *Hub) ingestLoop() {
	defer h.wg.Done()
	var spare []store.Notification
	for {
		select {
		case <-h.quit:
			return
		case <-h.inWake:
		}
		for {
			h.inMu.Lock()
			q := h.inQ
			h.inQ = spare[:0]
			h.inMu.Unlock()
			if len(q) == 0 {
				spare = q
				break
			}
			for _, n := range q {
				if h.ctx.Err() != nil {
					return
				}
				h.ingest(n)
			}
			clear(q) // the payloads may be large
			spare = q
			if cap(spare) > 4096 {
				spare = nil // a burst's backlog is not kept for ever
			}
		}
	}
}

// ingest delivers one notification's messages.
func (h *Hub) ingest(n store.Notification) {
	if n.Kind == store.NotifyResync {
		h.resync("the store's notifications were interrupted")
		return
	}
	if !h.HasTopics() {
		// Nobody subscribes here: nothing to fetch, decode or deliver. A
		// subscription made meanwhile begins after this message, which
		// was published before it.
		h.metrics.skipped()
		return
	}
	var p []byte
	if n.HubRef != 0 {
		h.noteStoredPayload()
		var err error
		if p, err = h.fetch(n.HubRef); err != nil {
			if h.ctx.Err() != nil {
				return
			}
			h.resync(fmt.Sprintf("stored payload %d: %v", n.HubRef, err))
			return
		}
		h.metrics.fetchedStored()
	} else {
		p = []byte(n.Payload)
	}
	msgs, err := decodeBatch(p)
	if err != nil {
		// Not ours (something else on the channel) or from a newer
		// version: nothing to deliver.
		h.log.Warn("hub: ignored a payload that does not decode", "err", err, "bytes", len(p))
		return
	}
	h.metrics.received(len(msgs))
	now := time.Now()
	delivered, evicted := 0, 0
	for i := range msgs {
		w := &msgs[i]
		t := h.lockTopic(topicKey{tenant: w.Tenant, name: w.Topic}, false)
		if t == nil {
			continue // nobody subscribes here
		}
		m := &Message{Topic: w.Topic, Type: w.Type, Data: w.Data, Time: time.UnixMicro(w.At).UTC()}
		d, e := t.deliver(h, m, now)
		t.mu.Unlock()
		delivered += d
		evicted += e
	}
	h.metrics.delivered(delivered)
	h.metrics.evicted(reasonSlow, evicted)
}

// fetch reads a stored payload, retrying for a while: a payload that
// cannot be read is a loss, and a loss costs every subscriber a resync.
func (h *Hub) fetch(ref int64) ([]byte, error) {
	var err error
	wait := 20 * time.Millisecond
	for range 8 {
		var p []byte
		if p, err = h.cfg.Store.HubPayload(h.ctx, ref); err == nil {
			return p, nil
		}
		if errors.Is(err, store.ErrNotFound) || h.ctx.Err() != nil {
			return nil, err
		}
		h.log.Warn("hub: fetch stored payload; retrying", "ref", ref, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-h.quit:
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
	return nil, err
}
