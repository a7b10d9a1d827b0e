package switchyard

import (
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/internal/dispatch"
	"github.com/switchyard-dev/switchyard/internal/store"
)

// eventPlan gathers what the rules and endpoints make of one event: the
// record to write, with its jobs and outcomes, and the topics to publish
// it to once it is written.
type eventPlan struct {
	c         *Client
	event     *CloudEvent
	rec       *store.EventRecord
	topics    []string
	endpoints map[string]*Endpoint // the tenant's, by id
	delivered map[string]bool      // endpoints that have a delivery job
	system    bool                 // the engine's own event: see routedSystemEvents
	env       *dispatch.Event      // what expressions see, made once when a rule needs it
}

func (p *eventPlan) expressionEnv() *dispatch.Event {
	if p.env != nil {
		return p.env
	}
	e := p.event
	env := &dispatch.Event{
		ID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject, SpecVersion: e.SpecVersion,
		DataContentType: e.DataContentType, DataSchema: e.DataSchema, Extensions: e.Extensions,
	}
	if e.Time != nil {
		env.Time = e.Time.UTC().Format(time.RFC3339Nano)
	}
	if env.Extensions == nil {
		env.Extensions = map[string]any{}
	}
	env.SetData(e.Data) // decoded by the rules, as far as they read it
	p.env = env
	return env
}

// rule evaluates one rule whose types matched, and records its outcome.
func (p *eventPlan) rule(cr *compiledRule) {
	o := store.RuleOutcome{RuleID: cr.rule.ID, RuleName: cr.rule.Name}
	defer func() { p.rec.Outcomes = append(p.rec.Outcomes, o) }()
	if cr.err != nil {
		o.Error = cr.err.Error()
		return
	}
	matched, decisions, err := cr.rule.Evaluate(p.expressionEnv())
	if err != nil {
		o.Error = err.Error()
		return
	}
	o.Matched = matched
	for _, d := range decisions {
		a := store.ActionOutcome{Action: d.Action, Job: -1, Topic: d.Topic, Endpoint: d.Endpoint}
		switch {
		case d.Err != nil:
			a.Error = d.Err.Error()
		case d.Job != nil:
			job, err := p.c.validate(ruleJob(d.Job))
			if err != nil {
				a.Error = strings.TrimPrefix(err.Error(), ErrInvalidArgument.Error()+": ")
				break
			}
			a.Job = p.addJob(job)
		case d.Topic != "":
			p.topics = append(p.topics, d.Topic)
		case d.Endpoint != "":
			a.Job, a.Error = p.deliver(d.Endpoint)
		}
		o.Actions = append(o.Actions, a)
	}
}

func (p *eventPlan) addJob(job store.InsertParams) int {
	p.rec.Jobs = append(p.rec.Jobs, job)
	return len(p.rec.Jobs) - 1
}

// deliver adds a delivery of the event to endpoint id, unless it has one,
// and returns its job's index (-1 for none) or why it cannot be.
func (p *eventPlan) deliver(id string) (job int, problem string) {
	ep := p.endpoints[id]
	switch {
	case ep == nil:
		return -1, "no such endpoint"
	case ep.Disabled:
		return -1, "endpoint disabled"
	case p.delivered[id]:
		return -1, "" // delivered once already
	}
	// An endpoint is never sent the system's events about itself: a
	// failing endpoint would feed itself failures forever.
	if (p.event.Type == EventDeliveryFailed || p.event.Type == EventEndpointDisabled) && p.event.Subject == id {
		return -1, "not sent to the endpoint it is about"
	}
	d, err := p.c.deliveryJob(id, p.event)
	if err != nil {
		return -1, err.Error()
	}
	if p.delivered == nil {
		p.delivered = map[string]bool{}
	}
	p.delivered[id] = true
	return p.addJob(d), ""
}

// subscriptions adds a delivery for every endpoint whose types match the
// event and that no rule delivered to, each recorded as an outcome.
func (p *eventPlan) subscriptions(endpoints []*Endpoint) {
	for _, ep := range endpoints {
		wants := ep.wants(p.event.Type)
		if p.system {
			wants = ep.wantsSystem(p.event.Type)
		}
		if !wants || p.delivered[ep.ID] {
			continue
		}
		job, problem := p.deliver(ep.ID)
		if job < 0 && problem == "" {
			continue
		}
		p.rec.Outcomes = append(p.rec.Outcomes, store.RuleOutcome{RuleID: ep.ID, RuleName: "endpoint " + ep.Name, Matched: true,
			Actions: []store.ActionOutcome{{Action: dispatch.ActionDeliver, Job: job, Endpoint: ep.ID, Error: problem}}})
	}
}
