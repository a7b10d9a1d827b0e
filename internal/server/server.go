// Package server is Switchyard's HTTP API: routes, middleware (request ids,
// access logs, metrics, authentication, body limits, panics), the mapping of
// errors to status codes, the health and metrics endpoints and the OpenAPI
// document.
//
// Every error answers in one shape:
//
//	{"error":{"code":"invalid_argument","message":"…","request_id":"…"}}
package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	switchyard "github.com/switchyard-dev/switchyard"
)

// Config configures a Server.
type Config struct {
	// Client does the work. Required.
	Client *switchyard.Client
	// Logger receives access logs and internal errors. Default
	// slog.Default().
	Logger *slog.Logger
	// Gatherer serves /metrics. Default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives the server's own metrics (HTTP requests, queue
	// depth). Default none.
	Registerer prometheus.Registerer
	// MaxBodyBytes limits request bodies; larger ones answer 413. Default
	// 1 MiB.
	MaxBodyBytes int64
	// MaxBatchBodyBytes limits POST /v1/jobs/batch bodies, which carry up to
	// 10,000 jobs. Default 64 MiB.
	MaxBatchBodyBytes int64
	// MetricsAuth requires an API key on /metrics. Default false: Prometheus
	// scrapers usually hold no key, and the metrics carry no job data.
	MetricsAuth bool
	// NoAccessLog turns off the per-request log line. Default false.
	NoAccessLog bool
	// AllowedOrigins are the browser origins (scheme://host[:port]) that may
	// call the API across origins (CORS); "*" allows any. Default none.
	AllowedOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// taking the client's IP address. Default none: the peer is the client.
	TrustedProxies []netip.Prefix
}

// Server serves the HTTP API.
type Server struct {
	cfg     Config
	c       *switchyard.Client
	log     *slog.Logger
	handler http.Handler
	metrics *httpMetrics
}

// Route is one registered route: a method and a net/http pattern.
type Route struct {
	Method  string
	Pattern string
}

// route is a Route and how the server serves it.
type route struct {
	Route
	public  bool // no API key needed
	handler func(*Server, http.ResponseWriter, *http.Request)
}

// routes is every route the server registers; the OpenAPI test checks the
// document against it.
var routes = []route{
	{Route{"GET", "/healthz"}, true, (*Server).healthz},
	{Route{"GET", "/readyz"}, true, (*Server).readyz},
	{Route{"GET", "/metrics"}, true, nil}, // set in New: it may need a key
	{Route{"GET", "/v1/openapi.json"}, true, (*Server).openapi},

	{Route{"POST", "/v1/jobs"}, false, (*Server).createJob},
	{Route{"POST", "/v1/jobs/batch"}, false, (*Server).createJobs},
	{Route{"GET", "/v1/jobs"}, false, (*Server).listJobs},
	{Route{"GET", "/v1/jobs/{id}"}, false, (*Server).getJob},
	{Route{"DELETE", "/v1/jobs/{id}"}, false, (*Server).deleteJob},
	{Route{"POST", "/v1/jobs/{id}/cancel"}, false, (*Server).cancelJob},
	{Route{"POST", "/v1/jobs/{id}/retry"}, false, (*Server).retryJob},

	{Route{"GET", "/v1/queues"}, false, (*Server).listQueues},
	{Route{"PATCH", "/v1/queues/{name}"}, false, (*Server).updateQueue},
	{Route{"POST", "/v1/queues/{name}/pause"}, false, (*Server).pauseQueue},
	{Route{"POST", "/v1/queues/{name}/resume"}, false, (*Server).resumeQueue},
}

// Routes lists every route the server registers.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = r.Route
	}
	return out
}

// New validates cfg and builds the server's handler.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("server: config: Client is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxBatchBodyBytes <= 0 {
		cfg.MaxBatchBodyBytes = 64 << 20
	}
	s := &Server{cfg: cfg, c: cfg.Client, log: cfg.Logger}
	if cfg.Registerer != nil {
		m, err := newHTTPMetrics(cfg.Registerer, cfg.Client)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}

	mux := http.NewServeMux()
	methods := map[string][]string{} // pattern -> methods, for 405s
	for _, rt := range routes {
		h := rt.handler
		public := rt.public
		if rt.Pattern == "/metrics" {
			metrics := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{cfg.Logger}})
			h = func(_ *Server, w http.ResponseWriter, r *http.Request) { metrics.ServeHTTP(w, r) }
			public = !cfg.MetricsAuth
		}
		var next http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
		if !public {
			next = s.authenticate(next)
		}
		mux.Handle(rt.Method+" "+rt.Pattern, next)
		methods[rt.Pattern] = append(methods[rt.Pattern], rt.Method)
	}
	// Whatever no route matches lands on "/": a known path with another
	// method answers 405 with Allow, anything else 404, both in the error
	// shape. pathMux, holding the paths without methods, tells them apart.
	pathMux := http.NewServeMux()
	for pattern, ms := range methods {
		if slices.Contains(ms, "GET") {
			ms = append(ms, "HEAD")
		}
		allow := strings.Join(ms, ", ")
		pathMux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, r, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not allowed here; allowed: "+allow)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := pathMux.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		writeError(w, r, http.StatusNotFound, codeNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	s.handler = s.instrument(mux)
	return s, nil
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("server: metrics", "err", v) }
