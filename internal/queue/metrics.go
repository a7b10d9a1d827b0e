package queue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Metrics are the runner's Prometheus instruments. A nil *Metrics records
// nothing, so tests and embedders that don't want metrics pass nil.
type Metrics struct {
	enqueued   *prometheus.CounterVec
	storeOps   *prometheus.HistogramVec
	attempts   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	startDelay *prometheus.HistogramVec
	staleTotal prometheus.Counter
	rescues    prometheus.Counter
	leader     prometheus.Gauge
}

// NewMetrics creates the runner's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_jobs_enqueued_total",
			Help: "Jobs enqueued through this process (not counting unique-key matches), by queue and kind.",
		}, []string{"queue", "kind"}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_store_operation_seconds",
			Help:    "Latency of store operations, by operation and result (ok or error).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"op", "result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_job_attempts_total",
			Help: "Job attempts finished in this process, by queue, kind and outcome: succeeded, retried (failed with attempts left), dead, snoozed, released (at shutdown) or cancelled.",
		}, []string{"queue", "kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_job_run_seconds",
			Help:    "Handler run time of job attempts.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 12),
		}, []string{"queue", "kind"}),
		startDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_job_start_delay_seconds",
			Help:    "Time from a job's run_at to the start of its attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 12),
		}, []string{"queue"}),
		staleTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_stale_completions_total",
			Help: "Outcomes rejected because their lease was no longer current.",
		}),
		rescues: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_lease_rescues_total",
			Help: "Running jobs whose lease expired and that were rescued.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_leader",
			Help: "1 while this process leads maintenance.",
		}),
	}
	reg.MustRegister(m.enqueued, m.storeOps, m.attempts, m.duration, m.startDelay, m.staleTotal, m.rescues, m.leader)
	return m
}

var outcomeNames = map[store.Outcome]string{
	store.OutcomeSucceeded: "succeeded",
	store.OutcomeFailed:    "retried", // or dead when no attempt is left: see finished
	store.OutcomeDead:      "dead",
	store.OutcomeSnoozed:   "snoozed",
	store.OutcomeReleased:  "released",
	store.OutcomeCancelled: "cancelled",
}

func (m *Metrics) started(j *store.Job) {
	if m == nil {
		return
	}
	if !j.StartedAt.IsZero() && !j.RunAt.IsZero() {
		m.startDelay.WithLabelValues(j.Queue).Observe(max(j.StartedAt.Sub(j.RunAt), 0).Seconds())
	}
}

func (m *Metrics) finished(j *store.Job, o store.Outcome, d time.Duration) {
	if m == nil {
		return
	}
	name := outcomeNames[o]
	if o == store.OutcomeFailed && j.Attempt >= j.MaxAttempts {
		name = "dead"
	}
	m.attempts.WithLabelValues(j.Queue, j.Kind, name).Inc()
	m.duration.WithLabelValues(j.Queue, j.Kind).Observe(d.Seconds())
}

// Enqueued counts a newly enqueued job.
func (m *Metrics) Enqueued(queue, kind string) {
	if m != nil {
		m.enqueued.WithLabelValues(queue, kind).Inc()
	}
}

// ObserveStore records a store operation's latency; it is a store.Observer.
func (m *Metrics) ObserveStore(op string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.storeOps.WithLabelValues(op, result).Observe(d.Seconds())
}

func (m *Metrics) stale() {
	if m != nil {
		m.staleTotal.Inc()
	}
}

func (m *Metrics) rescued(n int) {
	if m != nil {
		m.rescues.Add(float64(n))
	}
}

func (m *Metrics) setLeader(v bool) {
	if m == nil {
		return
	}
	if v {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}
