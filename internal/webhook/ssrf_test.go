package webhook

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// canary is an HTTP server on 127.0.0.1 and, where the machine has IPv6,
// on [::1], on the same port, counting the connections it accepts: a guard
// that works lets none through.
type canary struct {
	port  string
	ipv6  bool
	conns atomic.Int32
}

func newCanary(t *testing.T) *canary {
	t.Helper()
	c := &canary{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "canary") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				c.conns.Add(1)
			}
		},
	}
	var listeners []net.Listener
	// The IPv6 port may be taken where the IPv4 one is free: try a few.
	for range 20 {
		l4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l4.Addr().String())
		l6, err := net.Listen("tcp6", "[::1]:"+port)
		if err == nil {
			listeners, c.port, c.ipv6 = []net.Listener{l4, l6}, port, true
			break
		}
		if lo, err := net.Listen("tcp6", "[::1]:0"); err != nil {
			listeners, c.port = []net.Listener{l4}, port // no IPv6 here
			break
		} else {
			lo.Close()
		}
		l4.Close()
	}
	if listeners == nil {
		t.Fatal("no port free on both 127.0.0.1 and [::1]")
	}
	for _, l := range listeners {
		go func() { _ = srv.Serve(l) }()
	}
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

// TestGuardedClientRefusesLoopback tries every spelling of a loopback
// address: each call fails at dial time (or at DNS, for spellings only some
// resolvers read as addresses) and the canary sees nothing.
func TestGuardedClientRefusesLoopback(t *testing.T) {
	t.Parallel()
	c := newCanary(t)
	client := NewHTTPClient(Guard{}, 5*time.Second)
	t.Cleanup(client.CloseIdleConnections)
	cases := []struct {
		host string
		// dnsMayFail: the pure Go resolver does not read these as
		// addresses, while getaddrinfo does, so they fail either at DNS or
		// at the guard.
		dnsMayFail bool
	}{
		{host: "127.0.0.1"},
		{host: "localhost"},
		{host: "[::1]"},
		{host: "0.0.0.0"},
		{host: "[::]"},
		{host: "[::ffff:127.0.0.1]"},
		{host: "[::ffff:7f00:1]"},
		{host: "[0:0:0:0:0:ffff:127.0.0.1]"},
		{host: "[::127.0.0.1]"},     // IPv4-compatible
		{host: "[64:ff9b::7f00:1]"}, // NAT64 of 127.0.0.1
		{host: "[2002:7f00:1::1]"},  // 6to4 of 127.0.0.1
		{host: "127.0.0.2"},         // the rest of 127/8
		{host: "169.254.169.254"},   // cloud metadata
		{host: "[fd00:ec2::254]"},   // cloud metadata, IPv6
		{host: "[fe80::1%25lo]"},    // link-local with a zone
		{host: "2130706433", dnsMayFail: true},
		{host: "0x7f.0.0.1", dnsMayFail: true},
		{host: "0177.0.0.1", dnsMayFail: true},
		{host: "127.1", dnsMayFail: true},
	}
	for _, tc := range cases {
		u := "http://" + tc.host + ":" + c.port + "/"
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s: %s, want an error", u, resp.Status)
			continue
		}
		var dnsErr *net.DNSError
		if !errors.Is(err, ErrForbiddenAddress) && !(tc.dnsMayFail && errors.As(err, &dnsErr)) {
			t.Errorf("GET %s: err = %v, want ErrForbiddenAddress", u, err)
		}
	}
	if n := c.conns.Load(); n != 0 {
		t.Fatalf("the canary accepted %d connections", n)
	}
}

// TestGuardedDialerRefusesLoopback: the dialer alone, for callers that are
// not HTTP clients.
func TestGuardedDialerRefusesLoopback(t *testing.T) {
	t.Parallel()
	c := newCanary(t)
	addrs := []string{"127.0.0.1:" + c.port, "localhost:" + c.port}
	if c.ipv6 {
		addrs = append(addrs, "[::1]:"+c.port)
	}
	for _, addr := range addrs {
		conn, err := Guard{}.Dialer(time.Second).Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("dial %s: err = %v, want ErrForbiddenAddress", addr, err)
		}
	}
	if n := c.conns.Load(); n != 0 {
		t.Fatalf("the canary accepted %d connections", n)
	}
}

func TestAllowPrivateReachesLoopback(t *testing.T) {
	t.Parallel()
	c := newCanary(t)
	client := NewHTTPClient(Guard{AllowPrivate: true}, 5*time.Second)
	t.Cleanup(client.CloseIdleConnections)
	hosts := []string{"127.0.0.1", "localhost"}
	if c.ipv6 {
		hosts = append(hosts, "[::1]")
	}
	for _, host := range hosts {
		resp, err := client.Get("http://" + host + ":" + c.port + "/")
		if err != nil {
			t.Errorf("GET %s: %v", host, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "canary" {
			t.Errorf("GET %s: %s %q", host, resp.Status, body)
		}
	}
	if c.conns.Load() == 0 {
		t.Fatal("the canary saw no connection")
	}
}

// TestNoRedirectFollowed: a redirect comes back as the response, and its
// target is never contacted. (The guard would refuse a redirect to a
// private address anyway, but a test server on loopback needs
// AllowPrivate, so this checks the redirect policy itself.)
func TestNoRedirectFollowed(t *testing.T) {
	t.Parallel()
	c := newCanary(t)
	target := "http://127.0.0.1:" + c.port + "/secret"
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	client := NewHTTPClient(Guard{AllowPrivate: true}, 5*time.Second)
	t.Cleanup(client.CloseIdleConnections)

	resp, err := client.Get(redirector.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target {
		t.Fatalf("response = %s, Location %q; want the 302 itself", resp.Status, resp.Header.Get("Location"))
	}
	if n := c.conns.Load(); n != 0 {
		t.Fatalf("the redirect target got %d connections", n)
	}
}

func TestNewHTTPClientUsesNoProxy(t *testing.T) {
	t.Parallel()
	client := NewHTTPClient(Guard{}, time.Minute)
	tr, ok := client.Transport.(*http.Transport)
	if !ok || tr.Proxy != nil {
		t.Fatalf("transport = %T with a proxy: an environment proxy would connect where the guard cannot see", client.Transport)
	}
	if client.Timeout != time.Minute {
		t.Fatalf("timeout = %s", client.Timeout)
	}
}

func TestGuardCheck(t *testing.T) {
	t.Parallel()
	forbidden := map[string]string{ // address: a word of its reason
		"0.0.0.0":                   "unspecified",
		"0.1.2.3":                   "unspecified",
		"127.0.0.1":                 "loopback",
		"127.255.255.254":           "loopback",
		"10.0.0.1":                  "private",
		"10.255.255.255":            "private",
		"172.16.0.1":                "private",
		"172.31.255.255":            "private",
		"192.168.1.1":               "private",
		"169.254.169.254":           "link-local",
		"169.254.0.1":               "link-local",
		"100.64.0.1":                "carrier-grade NAT",
		"100.127.255.255":           "carrier-grade NAT",
		"192.0.0.8":                 "IETF",
		"192.0.2.1":                 "documentation",
		"198.51.100.7":              "documentation",
		"203.0.113.9":               "documentation",
		"198.18.0.1":                "benchmarking",
		"198.19.255.255":            "benchmarking",
		"224.0.0.1":                 "multicast",
		"239.255.255.250":           "multicast",
		"255.255.255.255":           "broadcast",
		"240.0.0.1":                 "reserved",
		"::":                        "unspecified",
		"::1":                       "loopback",
		"::ffff:127.0.0.1":          "IPv4-mapped address of 127.0.0.1, in the loopback",
		"::ffff:7f00:1":             "loopback",
		"::ffff:10.1.2.3":           "private",
		"::ffff:169.254.169.254":    "link-local",
		"::127.0.0.1":               "IPv4-compatible",
		"::8.8.8.8":                 "IPv4-compatible",
		"::ffff:0:7f00:1":           "IPv4-translated",
		"64:ff9b::127.0.0.1":        "NAT64 address of 127.0.0.1, in the loopback",
		"64:ff9b::a9fe:a9fe":        "NAT64 address of 169.254.169.254",
		"64:ff9b:1::1":              "local-use NAT64",
		"2002:7f00:1::":             "6to4 address of 127.0.0.1",
		"2002:c0a8:101::1":          "6to4 address of 192.168.1.1",
		"2002:a9fe:a9fe::":          "6to4 address of 169.254.169.254",
		"2001:0:4136:e378::1":       "Teredo",
		"2001:db8::1":               "documentation",
		"3fff::1":                   "documentation",
		"2001:2::1":                 "benchmarking",
		"100::1":                    "discard-only",
		"fc00::1":                   "unique-local",
		"fd00::2":                   "unique-local",
		"fd00:ec2::254":             "unique-local",
		"fe80::1":                   "link-local",
		"fe80::1%eth0":              "link-local",
		"febf::1":                   "link-local",
		"fec0::1":                   "site-local",
		"ff02::1":                   "multicast",
		"ff05::2":                   "multicast",
		"::ffff:255.255.255.255":    "broadcast",
		"0000:0000:0000:0000::0001": "loopback",
	}
	for s, reason := range forbidden {
		ip := netip.MustParseAddr(s)
		err := Guard{}.Check(ip)
		if !errors.Is(err, ErrForbiddenAddress) || !strings.Contains(err.Error(), reason) || !strings.Contains(err.Error(), ip.String()) {
			t.Errorf("Check(%s) = %v, want ErrForbiddenAddress naming the address and %q", s, err, reason)
		}
		if err := (Guard{AllowPrivate: true}).Check(ip); err != nil {
			t.Errorf("AllowPrivate: Check(%s) = %v", s, err)
		}
	}
	for _, s := range []string{
		"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888",
		"::ffff:8.8.8.8",    // IPv4-mapped public
		"64:ff9b::808:808",  // NAT64 of 8.8.8.8
		"2002:808:808::1",   // 6to4 of 8.8.8.8
		"100.63.255.255",    // just below carrier-grade NAT
		"100.128.0.0",       // just above
		"172.15.255.255",    // just below 172.16/12
		"172.32.0.0",        // just above
		"169.253.255.255",   // just below link-local
		"192.0.1.1",         // just above 192.0.0/24
		"198.20.0.0",        // just above benchmarking
		"223.255.255.255",   // just below multicast
		"2a00:1450:4001::1", // Google, IPv6
		"2001:4:112::1",     // AS112, not Teredo
		"fbff:ffff::1",      // just below fc00::/7
		"fe00::1",           // between fc00::/7 and fe80::/10
	} {
		if err := (Guard{}).Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("Check(%s) = %v, want nil", s, err)
		}
	}
	if err := (Guard{}).Check(netip.Addr{}); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Check(invalid) = %v", err)
	}
}

func TestGuardControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "8.8.8.8:443", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"tcp4", "127.0.0.1:80", false},
		{"tcp6", "[::1]:80", false},
		{"tcp6", "[fe80::1%eth0]:80", false},
		{"tcp6", "[::ffff:10.0.0.1]:80", false},
		{"unix", "/run/docker.sock", false},
		{"tcp", "garbage", false},
	} {
		err := Guard{}.Control(tc.network, tc.address, nil)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Control(%s, %s) = %v", tc.network, tc.address, err)
		}
	}
	if err := (Guard{AllowPrivate: true}).Control("tcp4", "127.0.0.1:80", nil); err != nil {
		t.Errorf("AllowPrivate: Control = %v", err)
	}
}
