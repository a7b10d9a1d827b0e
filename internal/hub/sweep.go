package hub

import (
	"time"
)

// sweepLoop trims the history of idle topics, drops topics that have had
// no subscriber for the history TTL, and deletes stored payloads older than
// payloadTTL. Busy topics trim themselves as messages arrive and
// subscribers come, so the sweep only bounds what idleness leaves behind,
// and it wakes only while there is something to sweep: an idle hub with no
// topics never wakes.
func (h *Hub) sweepLoop() {
	defer h.wg.Done()
	// Payloads a node stored before it died are nobody's to sweep: each
	// hub looks once as it starts.
	h.sweepPayloads(time.Now(), true)
	every := sweepInterval(h.cfg.HistoryTTL)
	var timer *time.Timer
	var tick <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if tick == nil && (h.topicCount() > 0 || h.lastRef.Load() != 0) {
			// On wall-clock multiples, so it shares its wake-ups with the
			// engine's periodic work.
			d := time.Until(time.Now().Truncate(every).Add(every))
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tick = timer.C
		}
		select {
		case <-h.quit:
			return
		case <-h.sweepKick:
		case <-tick:
			tick = nil
			now := time.Now()
			h.sweep(now)
			h.sweepPayloads(now, false)
		}
	}
}

// sweepInterval is how often the sweep runs: a fraction of the TTL, within
// one to eight idle ticks, on a multiple of the tick.
func sweepInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/2, idleTick), 8*idleTick).Truncate(idleTick)
}

// sweep trims idle history and drops topics nobody subscribed to for the
// history TTL.
func (h *Hub) sweep(now time.Time) {
	cutoff := now.Add(-h.cfg.HistoryTTL)
	h.mu.Lock()
	ts := h.topicList()
	h.mu.Unlock()
	var idle []*topic
	for _, t := range ts {
		t.mu.Lock()
		t.pruneClosed()
		t.trim(cutoff)
		if len(t.subs) == 0 && t.idleSince.Before(cutoff) {
			idle = append(idle, t)
		}
		t.mu.Unlock()
	}
	if len(idle) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range idle {
		t.mu.Lock()
		if !t.dead && len(t.subs) == 0 && t.idleSince.Before(cutoff) {
			t.dead = true
			delete(h.topics, t.key)
		}
		t.mu.Unlock()
	}
}

// noteStoredPayload records that a stored payload arrived, so the sweep
// deletes it once it is old.
func (h *Hub) noteStoredPayload() {
	if h.lastRef.Swap(time.Now().UnixNano()) == 0 {
		signal(h.sweepKick)
	}
}

// sweepPayloads deletes stored payloads older than payloadTTL, if any
// arrived (or always, with anyway). Every node that heard of a stored
// payload deletes it: concurrent deletes of the same rows are harmless, and
// it needs no leader.
func (h *Hub) sweepPayloads(now time.Time, anyway bool) {
	last := h.lastRef.Load()
	if last == 0 && !anyway {
		return
	}
	before := now.Add(-payloadTTL)
	const limit = 1000
	for {
		n, err := h.cfg.Store.DeleteHubPayloadsBefore(h.ctx, before, limit)
		if err != nil {
			if h.ctx.Err() == nil {
				h.log.Warn("hub: delete old stored payloads", "err", err)
			}
			return
		}
		if n < limit {
			break
		}
	}
	if last != 0 && last < before.UnixNano() {
		h.lastRef.CompareAndSwap(last, 0)
	}
}
