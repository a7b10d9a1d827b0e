package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	switchyard "github.com/switchyard-dev/switchyard"
)

// httpMetrics are the server's own Prometheus instruments.
type httpMetrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	hooks        *prometheus.CounterVec
	hooksRefused *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer, c *switchyard.Client) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"method", "route"}),
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_webhooks_received_total",
			Help: "Inbound webhooks verified and recorded, by scheme.",
		}, []string{"scheme"}),
		hooksRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_webhooks_rejected_total",
			Help: "Inbound webhooks refused, by scheme (empty for an unknown source) and reason.",
		}, []string{"scheme", "reason"}),
	}
	for _, col := range []prometheus.Collector{m.requests, m.duration, m.hooks, m.hooksRefused, &depthCollector{c: c}} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if status == 0 {
		status = 200 // nothing written: net/http answers 200
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

func (m *httpMetrics) hookReceived(scheme string) {
	if m != nil {
		m.hooks.WithLabelValues(scheme).Inc()
	}
}

func (m *httpMetrics) hookRejected(scheme, reason string) {
	if m != nil {
		m.hooksRefused.WithLabelValues(scheme, reason).Inc()
	}
}

// depthCollector reports queue depth by tenant and state from the store at
// scrape time, so the figure is the database's, the same on every node.
type depthCollector struct {
	c *switchyard.Client
}

// maxDepthTenants bounds the tenants a scrape reads queue depth for: one
// query each.
const maxDepthTenants = 100

var depthDesc = prometheus.NewDesc("switchyard_queue_jobs",
	"Jobs in the store by tenant, queue and state, read at scrape time (the first 100 tenants by id).", []string{"tenant", "queue", "state"}, nil)

var depthErrorsDesc = prometheus.NewDesc("switchyard_queue_jobs_scrape_error",
	"1 if reading queue depth failed at this scrape.", nil, nil)

func (d *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- depthErrorsDesc
}

func (d *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := 0.0
	tenants, _, err := d.c.Tenants(ctx, "", maxDepthTenants)
	if err != nil {
		failed = 1
	}
	for _, t := range tenants {
		qs, err := d.c.ForTenant(t.ID).Queues(ctx)
		if err != nil {
			failed = 1
			continue
		}
		for _, q := range qs {
			for state, n := range q.Counts {
				ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n), t.ID, q.Name, state)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(depthErrorsDesc, prometheus.GaugeValue, failed)
}
