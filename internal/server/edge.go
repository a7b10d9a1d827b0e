package server

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// securityHeaders go on every response. The API answers JSON to programs;
// nothing it serves should be sniffed, framed or leak a referrer.
var securityHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
	{"Cache-Control", "no-store"},
}

// CORS: what a browser on an allowed origin may send and read.
const (
	corsAllowMethods  = "GET, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, X-Request-Id, Last-Event-ID, Switchyard-Tenant"
	corsExposeHeaders = "X-Request-Id, Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset"
	corsMaxAge        = "600"
)

// originAllowed reports whether browsers on origin may call the API.
func (s *Server) originAllowed(origin string) bool {
	return slices.Contains(s.cfg.AllowedOrigins, "*") || slices.Contains(s.cfg.AllowedOrigins, origin)
}

// edge sets the security headers and the CORS headers, and answers CORS
// preflight requests itself. It reports whether the request was answered.
func (s *Server) edge(w http.ResponseWriter, r *http.Request) (answered bool) {
	h := w.Header()
	for _, kv := range securityHeaders {
		h.Set(kv[0], kv[1])
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	h.Add("Vary", "Origin")
	if !s.originAllowed(origin) {
		// No CORS headers: the browser refuses to hand over the answer.
		// A preflight gets a plain 403 so the refusal is visible.
		if isPreflight(r) {
			writeError(w, r, http.StatusForbidden, codePermissionDenied, "origin "+strconv.Quote(origin)+" is not allowed")
			return true
		}
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	if isPreflight(r) {
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders+cloudEventHeaders(r.Header.Get("Access-Control-Request-Headers")))
		h.Set("Access-Control-Max-Age", corsMaxAge)
		h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// cloudEventHeaders returns, as ", a, b", the ce-* headers a preflight asks
// for: a binary-mode CloudEvent carries its attributes, extensions
// included, in headers of that prefix.
func cloudEventHeaders(requested string) string {
	var b strings.Builder
	for _, name := range strings.Split(requested, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if strings.HasPrefix(name, "ce-") && len(name) <= 64 && !strings.ContainsAny(name, " \t\r\n;") {
			b.WriteString(", ")
			b.WriteString(name)
		}
	}
	return b.String()
}

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// clientIP is the address of the client that made the request: the peer,
// unless the peer is a trusted proxy, in which case X-Forwarded-For is read
// from the right, skipping trusted proxies, to the first address that is
// not one. An untrusted peer's X-Forwarded-For is ignored: anyone can send
// the header.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client // a malformed hop: trust nothing beyond it
			}
			client = a.Unmap()
			if !s.trusted(client) {
				return client
			}
		}
	}
	return client
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
