package switchyard

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// The engine's own events through the rules: so that a user can route
// job.dead or worker.offline to a webhook or a job, these lifecycle
// events are recorded as events of their tenant and routed like received
// ones, whenever a rule or an endpoint names their type (exactly, or by a
// prefix such as "worker.*"; "*" alone means every received event, not
// the engine's). The others (job.enqueued, started, progress, succeeded,
// retrying) come thousands a second and stay on the topics only: routing
// them would write an event row per change, and a rule enqueueing on
// job.enqueued would feed itself.
//
// Routing is best effort in the way live events are: it happens after the
// change committed, on a goroutine of its own, and a crash in between
// loses it. Their ids are deterministic (the job and its attempt, the node
// and its time), so an event that is routed twice is recorded once.
var routedSystemEvents = map[string]bool{
	EventJobDead: true, EventJobCancelled: true,
	EventQueuePaused: true, EventQueueResumed: true,
	EventWorkerOnline: true, EventWorkerOffline: true,
}

// systemSource is the CloudEvents source of the engine's events.
const systemSource = "/switchyard/engine"

// systemRouterBuffer bounds the events waiting to be routed.
const systemRouterBuffer = 10000

// systemRouter takes the engine's lifecycle events as they are published
// and records those some rule or endpoint wants.
type systemRouter struct {
	c       *Client
	ch      chan queue.Event
	dropped atomic.Int64
	quit    chan struct{}
	wg      sync.WaitGroup
}

func newSystemRouter(c *Client) *systemRouter {
	r := &systemRouter{c: c, ch: make(chan queue.Event, systemRouterBuffer), quit: make(chan struct{})}
	r.wg.Add(1)
	go r.loop()
	return r
}

func (r *systemRouter) stop() {
	close(r.quit)
	r.wg.Wait()
}

// offer takes events on their way to the topics. It never waits and never
// reads the store: an event whose tenant's rules are cached and want
// nothing of it is passed over here; the others are checked by the loop.
func (r *systemRouter) offer(evs []queue.Event) {
	for i := range evs {
		ev := &evs[i]
		if !routedSystemEvents[ev.Type] {
			continue
		}
		if known, wanted := r.c.ForTenant(ev.TenantID).cachedSystemInterest(ev.Type); known && !wanted {
			continue
		}
		select {
		case r.ch <- *ev:
		default:
			if r.dropped.Add(1)&1023 == 1 {
				r.c.log.Warn("switchyard: system events: buffer full; events not routed", "type", ev.Type, "dropped", r.dropped.Load())
			}
		}
	}
}

func (r *systemRouter) loop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.quit:
			return
		case ev := <-r.ch:
			r.route(ev)
		}
	}
}

func (r *systemRouter) route(ev queue.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := r.c.ForTenant(ev.TenantID)
	wanted, err := c.systemInterest(ctx, ev.Type)
	if err != nil {
		r.c.log.Error("switchyard: system events: rules", "tenant", ev.TenantID, "err", err)
		return
	}
	if !wanted {
		return
	}
	data := appendEventData(nil, &ev)
	id, subject := ev.Type+":", ""
	switch {
	case ev.Node != nil:
		subject = "worker/" + ev.Node.ID
		var w Worker
		_ = json.Unmarshal(data, &w)
		at := w.LastSeenAt
		if w.OfflineAt != nil {
			at = *w.OfflineAt
		}
		id += ev.Node.ID + ":" + strconv.FormatInt(at.UnixMicro(), 10)
	case ev.JobID != 0:
		subject = "job/" + formatID(ev.JobID)
		id += formatID(ev.JobID) + ":" + strconv.Itoa(ev.Attempt)
	default:
		subject = "queue/" + ev.Queue
		id += ev.Queue + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	now := time.Now().UTC()
	ce := CloudEvent{SpecVersion: "1.0", ID: id, Source: systemSource, Type: ev.Type, Subject: subject,
		Time: &now, DataContentType: "application/json", Data: data}
	if _, err := c.sendEvents(ctx, eventOrigin{system: true}, ce); err != nil {
		r.c.log.Error("switchyard: system events: record", "type", ev.Type, "tenant", ev.TenantID, "err", err)
	}
}

// cachedSystemInterest says, from the caches alone, whether a rule or an
// endpoint of this client's tenant wants system events of type typ; known
// is false when the caches do not hold the tenant's definitions.
func (c *Client) cachedSystemInterest(typ string) (known, wanted bool) {
	now := time.Now()
	rules, ok1 := c.rules.get(c.cfg.TenantID, now)
	eps, ok2 := c.endpoints.get(c.cfg.TenantID, now)
	if !ok1 || !ok2 {
		return false, false
	}
	return true, systemWanted(typ, rules, eps)
}

// systemInterest reads the tenant's definitions if it must.
func (c *Client) systemInterest(ctx context.Context, typ string) (bool, error) {
	rules, err := c.tenantRules(ctx)
	if err != nil {
		return false, err
	}
	eps, err := c.tenantEndpoints(ctx)
	if err != nil {
		return false, err
	}
	return systemWanted(typ, rules, eps), nil
}

func systemWanted(typ string, rules []*compiledRule, eps []*Endpoint) bool {
	for _, r := range rules {
		if r.rule.MatchesSystem(typ) {
			return true
		}
	}
	for _, ep := range eps {
		if ep.wantsSystem(typ) {
			return true
		}
	}
	return false
}
