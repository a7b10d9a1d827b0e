package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// batch is one send to the store: the messages published while the send
// before it was under way, in the order they were published.
type batch struct {
	buf  []byte // batchOpen, then the messages separated by commas
	n    int    // messages in buf
	done chan struct{}
	err  error // written before done is closed
}

func (b *batch) finish(err error) {
	b.err = err
	close(b.done)
}

// Publish publishes one message to (tenant, topic) on every node. It
// returns once the store has committed the send, so the message is on its
// way to every subscriber; this node's subscribers receive it when it comes
// back from the store, like everyone else's. If ctx ends first, Publish
// returns its error but the message may still go out.
func (h *Hub) Publish(ctx context.Context, tenant, topic, typ string, data json.RawMessage) error {
	return h.PublishBatch(ctx, []Outgoing{{Tenant: tenant, Topic: topic, Type: typ, Data: data}})
}

// PublishBatch publishes msgs in their order, in as few sends as their
// size allows (usually one). It validates every message first: if one is
// invalid (ErrInvalid), none is published. Otherwise as Publish.
func (h *Hub) PublishBatch(ctx context.Context, msgs []Outgoing) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now()
	// Encode on the caller's goroutine, so the sender only sends.
	var enc []byte
	ends := make([]int, len(msgs))
	for i := range msgs {
		var err error
		if enc, err = h.encodeMsg(enc, &msgs[i], now); err != nil {
			if len(msgs) > 1 {
				return fmt.Errorf("message %d: %w", i, err)
			}
			return err
		}
		ends[i] = len(enc)
	}

	var waits []*batch
	h.sendMu.Lock()
	if !h.sendRunning {
		h.sendMu.Unlock()
		return fmt.Errorf("hub: publish: %w", ErrStopped)
	}
	start := 0
	for _, end := range ends {
		b := h.batchFor(end - start)
		if b.n > 0 {
			b.buf = append(b.buf, ',')
		}
		b.buf = append(b.buf, enc[start:end]...)
		b.n++
		start = end
		if len(waits) == 0 || waits[len(waits)-1] != b {
			waits = append(waits, b)
		}
	}
	h.sendMu.Unlock()
	signal(h.sendWake)

	var errs []error
	for _, b := range waits {
		select {
		case <-b.done:
			if b.err != nil {
				errs = append(errs, b.err)
			}
		case <-ctx.Done():
			return fmt.Errorf("hub: publish: %w", context.Cause(ctx))
		}
	}
	return errors.Join(errs...)
}

// batchFor returns the batch a message of size bytes joins: the newest
// pending one if it has room, else a new one. h.sendMu must be held.
func (h *Hub) batchFor(size int) *batch {
	if k := len(h.pending); k > 0 {
		if b := h.pending[k-1]; len(b.buf)+1+size+len(batchClose) <= maxBatchBytes {
			return b
		}
	}
	b := &batch{buf: make([]byte, 0, max(512, len(batchOpen)+size+len(batchClose))), done: make(chan struct{})}
	b.buf = append(b.buf, batchOpen...)
	h.pending = append(h.pending, b)
	return b
}

// sendLoop sends pending batches one at a time, oldest first: whatever is
// published while a send is under way goes out together in the next.
func (h *Hub) sendLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.quit:
			return // Stop fails what is left
		case <-h.sendWake:
		}
		for {
			h.sendMu.Lock()
			if len(h.pending) == 0 || !h.sendRunning {
				h.sendMu.Unlock()
				break
			}
			b := h.pending[0]
			h.pending[0] = nil
			h.pending = h.pending[1:]
			h.sendMu.Unlock()
			h.send(b)
		}
	}
}

func (h *Hub) send(b *batch) {
	b.buf = append(b.buf, batchClose...)
	ctx, cancel := context.WithTimeout(h.ctx, sendTimeout)
	err := h.cfg.Store.HubSend(ctx, b.buf)
	cancel()
	b.buf = nil
	if err != nil {
		h.metrics.sendFailed()
		b.finish(fmt.Errorf("hub: publish: %w", err))
		return
	}
	h.metrics.published(b.n)
	b.finish(nil)
}
