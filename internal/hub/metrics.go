package hub

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Eviction reasons, the label of switchyard_hub_evictions_total.
const (
	reasonSlow   = "slow_consumer"
	reasonResync = "resync"
)

// metrics are the hub's Prometheus instruments. A nil *metrics records
// nothing.
type metrics struct {
	publishedN prometheus.Counter
	receivedN  prometheus.Counter
	skippedN   prometheus.Counter
	deliveredN prometheus.Counter
	sendErrors prometheus.Counter
	storedN    prometheus.Counter
	slow       prometheus.Counter
	resync     prometheus.Counter
}

func newMetrics(h *Hub, reg prometheus.Registerer) (*metrics, error) {
	evictions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_hub_evictions_total",
		Help: "Subscribers the hub closed, by reason: slow_consumer (buffer full) or resync (messages may have been lost).",
	}, []string{"reason"})
	m := &metrics{
		publishedN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_hub_messages_published_total",
			Help: "Messages published through this node (sends the store committed).",
		}),
		receivedN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_hub_messages_received_total",
			Help: "Messages this node heard from the store, published on any node, and read while it had subscribers.",
		}),
		skippedN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_hub_sends_skipped_total",
			Help: "Sends this node heard from the store and left unread because nobody subscribed to anything here.",
		}),
		deliveredN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_hub_messages_delivered_total",
			Help: "Messages put into subscribers' buffers on this node (one per message and subscriber).",
		}),
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_hub_publish_errors_total",
			Help: "Sends to the store that failed; their publishers got the error.",
		}),
		storedN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_hub_stored_payloads_total",
			Help: "Sends this node fetched from the store because they were too large for a notification.",
		}),
		slow:   evictions.WithLabelValues(reasonSlow),
		resync: evictions.WithLabelValues(reasonResync),
	}
	cs := []prometheus.Collector{
		m.publishedN, m.receivedN, m.skippedN, m.deliveredN, m.sendErrors, m.storedN, evictions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_hub_subscribers",
			Help: "Open hub subscribers (connections) on this node.",
		}, func() float64 { return float64(h.subscriberCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_hub_topics",
			Help: "Topics on this node with subscribers, or with none for less than the history TTL.",
		}, func() float64 { return float64(h.topicCount()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("hub: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) published(n int) {
	if m != nil && n > 0 {
		m.publishedN.Add(float64(n))
	}
}

func (m *metrics) received(n int) {
	if m != nil && n > 0 {
		m.receivedN.Add(float64(n))
	}
}

func (m *metrics) skipped() {
	if m != nil {
		m.skippedN.Inc()
	}
}

func (m *metrics) delivered(n int) {
	if m != nil && n > 0 {
		m.deliveredN.Add(float64(n))
	}
}

func (m *metrics) fetchedStored() {
	if m != nil {
		m.storedN.Inc()
	}
}

func (m *metrics) sendFailed() {
	if m != nil {
		m.sendErrors.Inc()
	}
}

func (m *metrics) evicted(reason string, n int) {
	if m == nil || n == 0 {
		return
	}
	if reason == reasonSlow {
		m.slow.Add(float64(n))
	} else {
		m.resync.Add(float64(n))
	}
}
