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
	"fmt"
	"log/slog"
	"math"
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
	// RateLimit is each API key's and user's request rate, unless their
	// tenant sets its own. Default 1000 requests/s with a burst of 2000;
	// a negative rate turns limiting off.
	RateLimit switchyard.RateLimit
	// IPRateLimit is each client IP's rate on the unauthenticated routes
	// that check credentials (login, refresh). Default 5 requests/s with a
	// burst of 20; a negative rate turns it off.
	IPRateLimit switchyard.RateLimit
	// LoginLimit slows down password guessing: each account may try this
	// many logins (successful or not). Default 10 at once, then one every
	// 30 seconds.
	LoginLimit switchyard.RateLimit
	// Realtime limits the live-update endpoints (WebSocket and SSE).
	// Default: each RealtimeConfig field's own.
	Realtime RealtimeConfig
}

// Server serves the HTTP API.
type Server struct {
	cfg     Config
	c       *switchyard.Client
	log     *slog.Logger
	handler http.Handler
	metrics *httpMetrics
	// realtime is the live endpoints' state: open connections, limits.
	realtime *realtime
}

// Route is one registered route: a method and a net/http pattern.
type Route struct {
	Method  string
	Pattern string
}

// route is a Route and how the server serves it: who may call it, and
// what the audit log calls it.
type route struct {
	Route
	// public routes need no credentials.
	public bool
	// limitIP rate-limits a public route per client IP.
	limitIP bool
	// instance routes act outside any one tenant (tenants, the caller's
	// own session); minRole is then RoleInstanceAdmin or "" (any caller),
	// and the handler decides the rest.
	instance bool
	// minRole is the weakest tenant role allowed.
	minRole string
	// action names a mutating route in the audit log; reads have none.
	action  string
	handler func(*Server, http.ResponseWriter, *http.Request)
}

const (
	viewer        = switchyard.RoleViewer
	operator      = switchyard.RoleOperator
	admin         = switchyard.RoleAdmin
	instanceAdmin = switchyard.RoleInstanceAdmin
)

// routes is every route the server registers; the OpenAPI and the
// authorization tests check against it.
var routes = []route{
	{Route: Route{"GET", "/healthz"}, public: true, handler: (*Server).healthz},
	{Route: Route{"GET", "/readyz"}, public: true, handler: (*Server).readyz},
	{Route: Route{"GET", "/metrics"}, public: true}, // set in New: it may need a key
	{Route: Route{"GET", "/v1/openapi.json"}, public: true, handler: (*Server).openapi},

	{Route: Route{"POST", "/v1/auth/login"}, public: true, limitIP: true, handler: (*Server).login},
	{Route: Route{"POST", "/v1/auth/refresh"}, public: true, limitIP: true, handler: (*Server).refresh},
	{Route: Route{"POST", "/v1/auth/logout"}, instance: true, handler: (*Server).logout},
	{Route: Route{"GET", "/v1/me"}, instance: true, handler: (*Server).me},

	{Route: Route{"POST", "/v1/tenants"}, instance: true, minRole: instanceAdmin, action: "tenants.create", handler: (*Server).createTenant},
	{Route: Route{"GET", "/v1/tenants"}, instance: true, handler: (*Server).listTenants},
	{Route: Route{"GET", "/v1/tenants/{id}"}, instance: true, handler: (*Server).getTenant},
	{Route: Route{"PATCH", "/v1/tenants/{id}"}, instance: true, minRole: instanceAdmin, action: "tenants.update", handler: (*Server).updateTenant},

	{Route: Route{"POST", "/v1/users"}, minRole: admin, action: "users.create", handler: (*Server).createUser},
	{Route: Route{"GET", "/v1/users"}, minRole: admin, handler: (*Server).listUsers},
	{Route: Route{"GET", "/v1/users/{id}"}, minRole: viewer, handler: (*Server).getUser},
	{Route: Route{"PATCH", "/v1/users/{id}"}, minRole: viewer, action: "users.update", handler: (*Server).updateUser},
	{Route: Route{"DELETE", "/v1/users/{id}"}, minRole: admin, action: "users.delete", handler: (*Server).deleteUser},

	{Route: Route{"POST", "/v1/keys"}, minRole: admin, action: "keys.create", handler: (*Server).createKey},
	{Route: Route{"GET", "/v1/keys"}, minRole: admin, handler: (*Server).listKeys},
	{Route: Route{"GET", "/v1/keys/{id}"}, minRole: admin, handler: (*Server).getKey},
	{Route: Route{"DELETE", "/v1/keys/{id}"}, minRole: admin, action: "keys.revoke", handler: (*Server).revokeKey},

	{Route: Route{"GET", "/v1/audit"}, minRole: admin, handler: (*Server).listAudit},

	{Route: Route{"POST", "/v1/jobs"}, minRole: operator, action: "jobs.create", handler: (*Server).createJob},
	{Route: Route{"POST", "/v1/jobs/batch"}, minRole: operator, action: "jobs.create_batch", handler: (*Server).createJobs},
	{Route: Route{"GET", "/v1/jobs"}, minRole: viewer, handler: (*Server).listJobs},
	{Route: Route{"GET", "/v1/jobs/{id}"}, minRole: viewer, handler: (*Server).getJob},
	{Route: Route{"DELETE", "/v1/jobs/{id}"}, minRole: admin, action: "jobs.delete", handler: (*Server).deleteJob},
	{Route: Route{"POST", "/v1/jobs/{id}/cancel"}, minRole: operator, action: "jobs.cancel", handler: (*Server).cancelJob},
	{Route: Route{"POST", "/v1/jobs/{id}/retry"}, minRole: operator, action: "jobs.retry", handler: (*Server).retryJob},

	{Route: Route{"GET", "/v1/queues"}, minRole: viewer, handler: (*Server).listQueues},
	{Route: Route{"PATCH", "/v1/queues/{name}"}, minRole: admin, action: "queues.update", handler: (*Server).updateQueue},
	{Route: Route{"POST", "/v1/queues/{name}/pause"}, minRole: operator, action: "queues.pause", handler: (*Server).pauseQueue},
	{Route: Route{"POST", "/v1/queues/{name}/resume"}, minRole: operator, action: "queues.resume", handler: (*Server).resumeQueue},

	{Route: Route{"GET", "/v1/workers"}, minRole: viewer, handler: (*Server).listWorkers},

	{Route: Route{"POST", "/v1/events"}, minRole: operator, action: "events.send", handler: (*Server).sendEvents},
	{Route: Route{"GET", "/v1/events"}, minRole: viewer, handler: (*Server).listEvents},
	{Route: Route{"GET", "/v1/events/{id}"}, minRole: viewer, handler: (*Server).getEvent},

	// Rules change what the system does with every event: admin, as queue
	// settings are.
	{Route: Route{"POST", "/v1/rules"}, minRole: admin, action: "rules.create", handler: (*Server).createRule},
	{Route: Route{"GET", "/v1/rules"}, minRole: viewer, handler: (*Server).listRules},
	{Route: Route{"GET", "/v1/rules/{id}"}, minRole: viewer, handler: (*Server).getRule},
	{Route: Route{"PUT", "/v1/rules/{id}"}, minRole: admin, action: "rules.update", handler: (*Server).updateRule},
	{Route: Route{"DELETE", "/v1/rules/{id}"}, minRole: admin, action: "rules.delete", handler: (*Server).deleteRule},

	// Sources and endpoints hold signing secrets: admins manage them and
	// read the secrets; viewers see them redacted.
	{Route: Route{"POST", "/v1/sources"}, minRole: admin, action: "sources.create", handler: (*Server).createSource},
	{Route: Route{"GET", "/v1/sources"}, minRole: viewer, handler: (*Server).listSources},
	{Route: Route{"GET", "/v1/sources/{id}"}, minRole: viewer, handler: (*Server).getSource},
	{Route: Route{"PUT", "/v1/sources/{id}"}, minRole: admin, action: "sources.update", handler: (*Server).updateSource},
	{Route: Route{"DELETE", "/v1/sources/{id}"}, minRole: admin, action: "sources.delete", handler: (*Server).deleteSource},
	{Route: Route{"POST", "/v1/endpoints"}, minRole: admin, action: "endpoints.create", handler: (*Server).createEndpoint},
	{Route: Route{"GET", "/v1/endpoints"}, minRole: viewer, handler: (*Server).listEndpoints},
	{Route: Route{"GET", "/v1/endpoints/{id}"}, minRole: viewer, handler: (*Server).getEndpoint},
	{Route: Route{"PUT", "/v1/endpoints/{id}"}, minRole: admin, action: "endpoints.update", handler: (*Server).updateEndpoint},
	{Route: Route{"DELETE", "/v1/endpoints/{id}"}, minRole: admin, action: "endpoints.delete", handler: (*Server).deleteEndpoint},
	{Route: Route{"POST", "/v1/endpoints/{id}/rotate-secret"}, minRole: admin, action: "endpoints.rotate_secret", handler: (*Server).rotateEndpointSecret},
	{Route: Route{"GET", "/v1/endpoints/{id}/attempts"}, minRole: viewer, handler: (*Server).listDeliveryAttempts},
	{Route: Route{"POST", "/v1/endpoints/{id}/redeliver"}, minRole: operator, action: "endpoints.redeliver", handler: (*Server).redeliver},

	// Inbound webhooks need no key: the source's signature is the
	// credential (a bad one is audited by the handler).
	{Route: Route{"POST", "/hooks/{source}"}, public: true, handler: (*Server).receiveHook},
	{Route: Route{"GET", "/hooks/{source}"}, public: true, handler: (*Server).hookHandshake},

	// The live endpoints authenticate themselves (viewer or better, or a
	// subscription token), taking ?token= and ?tenant= too: browsers
	// cannot set headers on a WebSocket or an EventSource.
	{Route: Route{"GET", "/v1/ws"}, public: true, handler: (*Server).serveWebSocket},
	{Route: Route{"GET", "/v1/stream"}, public: true, handler: (*Server).serveStream},
	{Route: Route{"POST", "/v1/topics/{topic}/publish"}, minRole: operator, action: "topics.publish", handler: (*Server).publishTopic},
	{Route: Route{"POST", "/v1/tokens"}, minRole: viewer, action: "tokens.create", handler: (*Server).createSubscriptionToken},
	{Route: Route{"GET", "/v1/client.js"}, public: true, handler: (*Server).clientJS},
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
	defaultLimit(&cfg.RateLimit, switchyard.RateLimit{RequestsPerSecond: 1000, Burst: 2000})
	defaultLimit(&cfg.IPRateLimit, switchyard.RateLimit{RequestsPerSecond: 5, Burst: 20})
	defaultLimit(&cfg.LoginLimit, switchyard.RateLimit{RequestsPerSecond: 1.0 / 30, Burst: 10})
	for _, l := range []switchyard.RateLimit{cfg.RateLimit, cfg.IPRateLimit, cfg.LoginLimit} {
		if l.RequestsPerSecond > 0 {
			if err := l.Validate(); err != nil {
				return nil, fmt.Errorf("server: config: %w", err)
			}
		}
	}
	s := &Server{cfg: cfg, c: cfg.Client, log: cfg.Logger}
	if cfg.Registerer != nil {
		m, err := newHTTPMetrics(cfg.Registerer, cfg.Client)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}

	s.realtime = newRealtime(cfg.Realtime.withDefaults(), cfg.Logger)
	if err := s.realtime.register(cfg.Registerer); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	methods := map[string][]string{} // pattern -> methods, for 405s
	for _, rt := range routes {
		h := rt.handler
		if rt.Pattern == "/metrics" {
			metrics := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{cfg.Logger}})
			h = func(_ *Server, w http.ResponseWriter, r *http.Request) { metrics.ServeHTTP(w, r) }
			if cfg.MetricsAuth {
				rt.public, rt.instance = false, true
			}
		}
		mux.Handle(rt.Method+" "+rt.Pattern, s.serveRoute(rt, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }))
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

// defaultLimit fills in a zero limit; a negative rate means none.
func defaultLimit(l *switchyard.RateLimit, def switchyard.RateLimit) {
	switch {
	case l.RequestsPerSecond == 0:
		*l = def
	case l.RequestsPerSecond < 0:
		*l = switchyard.RateLimit{}
	case l.Burst == 0:
		l.Burst = max(1, int(math.Ceil(l.RequestsPerSecond)))
	}
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("server: metrics", "err", v) }
