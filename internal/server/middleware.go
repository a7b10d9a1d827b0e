package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	switchyard "github.com/switchyard-dev/switchyard"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	stateKey
)

// requestIDHeader carries the request id both ways: a caller's own id (from
// a proxy, say) is kept if it is sane, else the server makes one.
const requestIDHeader = "X-Request-Id"

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instrument is the outermost middleware: request id, panic recovery,
// access log and request metrics. It reads the matched route's pattern
// after the mux has set it, so metrics are labelled by route, not by path.
func (s *Server) instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if !saneRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(requestIDHeader, id)
		st := &reqState{}
		r = r.WithContext(context.WithValue(context.WithValue(r.Context(), requestIDKey, id), stateKey, st))
		rec := &statusRecorder{ResponseWriter: w}
		answered := s.edge(rec, r)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("server: panic", "method", r.Method, "path", r.URL.Path, "request_id", id, "panic", fmt.Sprint(p))
				if rec.status == 0 {
					writeError(rec, r, http.StatusInternalServerError, codeInternal, "internal error (request "+id+"); see the server log")
				}
			}
			route := r.Pattern
			if answered {
				route = "cors-preflight"
			} else if route == "" {
				route = "unmatched"
			} else if i := strings.IndexByte(route, ' '); i >= 0 {
				route = route[i+1:] // "GET /v1/jobs" → "/v1/jobs"; the method is its own label
			}
			elapsed := time.Since(start)
			s.metrics.observe(r.Method, route, rec.status, elapsed)
			if !s.cfg.NoAccessLog {
				attrs := []any{"method", r.Method, "path", r.URL.Path, "route", route, "status", rec.status,
					"bytes", rec.bytes, "duration_ms", float64(elapsed.Microseconds()) / 1000, "request_id", id,
					"client_ip", s.clientIP(r).String(), "peer", r.RemoteAddr}
				switch c := st.caller; {
				case c == nil:
				case c.key != nil:
					attrs = append(attrs, "key", c.key.Prefix, "tenant", c.tenant)
				default:
					attrs = append(attrs, "user", c.user.ID, "tenant", c.tenant)
				}
				s.log.Info("http request", attrs...)
			}
		}()
		if !answered {
			mux.ServeHTTP(rec, r)
		}
	})
}

func parseLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: limit must be an integer from 1 to 1000, got %q", switchyard.ErrInvalidArgument, v)
	}
	return n, nil
}

// onlyParams refuses query parameters other than those named.
func onlyParams(q url.Values, allowed ...string) error {
	for name := range q {
		if !slices.Contains(allowed, name) {
			return invalidf("unknown query parameter %q (this route takes: %s)", name, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// pageQuery reads the paging parameters of a list that takes no filters,
// answering the error itself if they are bad.
func (s *Server) pageQuery(w http.ResponseWriter, r *http.Request) (cursor string, limit int, ok bool) {
	q := r.URL.Query()
	if err := onlyParams(q, "limit", "cursor"); err != nil {
		s.fail(w, r, err)
		return "", 0, false
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		s.fail(w, r, err)
		return "", 0, false
	}
	return q.Get("cursor"), limit, true
}
