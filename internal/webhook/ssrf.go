package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is wrapped by the errors of a Guard that refuses an
// address.
var ErrForbiddenAddress = errors.New("forbidden address")

// Guard refuses connections to non-public addresses: loopback, private,
// link-local (where cloud metadata services listen), carrier-grade NAT,
// multicast, reserved and documentation ranges, and IPv6 forms embedding
// one of those. It checks the resolved address at dial time, so a name that
// resolves to an internal address, DNS rebinding between a check and the
// call, and redirects cannot get around it.
//
// The zero Guard refuses; it is safe for concurrent use.
type Guard struct {
	// AllowPrivate turns the guard off, for development and tests that
	// call services on the same machine or network.
	AllowPrivate bool
}

// Check returns nil if ip may be called, and otherwise an error wrapping
// ErrForbiddenAddress that names the address and its range.
func (g Guard) Check(ip netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	if !ip.IsValid() {
		return fmt.Errorf("%w: not an IP address", ErrForbiddenAddress)
	}
	// A zone (fe80::1%eth0) would make every Prefix.Contains false.
	if reason := forbiddenReason(ip.WithZone("")); reason != "" {
		return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ip, reason)
	}
	return nil
}

// Control checks the address a socket is about to connect to; it is made
// for net.Dialer.Control, which is called after name resolution with the
// "ip:port" actually dialled, for each address tried.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Not an IP network (a unix socket, say): nothing outbound calls.
		return fmt.Errorf("%w: %s address %q is not an IP address and port", ErrForbiddenAddress, network, address)
	}
	return g.Check(ap.Addr())
}

// Dialer returns a dialer with the given connect timeout whose connections
// g checks.
func (g Guard) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.Control}
}

// maxDialTimeout bounds connecting, for clients with no overall timeout.
const maxDialTimeout = 30 * time.Second

// NewHTTPClient returns the client for outbound calls: its connections are
// checked by g; it uses no proxy, since a proxy from the environment would
// connect on its behalf where the guard cannot see; it follows no redirect
// (a 3xx is returned as the response, for the caller to report), so a
// request and its headers go nowhere the caller did not name; and timeout,
// if not zero, bounds each whole request.
func NewHTTPClient(g Guard, timeout time.Duration) *http.Client {
	dialTimeout := maxDialTimeout
	if timeout > 0 && timeout < dialTimeout {
		dialTimeout = timeout
	}
	transport := &http.Transport{
		Proxy:       nil,
		DialContext: g.Dialer(dialTimeout).DialContext,
		// A custom DialContext turns HTTP/2 off unless asked for.
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       timeout,
	}
}

// addressRange is a range of forbidden addresses.
type addressRange struct {
	prefix netip.Prefix
	name   string
	// embedded, if set, is the IPv4 address an address of the range stands
	// for (NAT64, 6to4): the address is forbidden only if that one is.
	embedded func(netip.Addr) netip.Addr
}

// forbiddenRanges are the ranges refused, from the IANA special-purpose
// address registries. Where ranges nest, the narrower comes first, for its
// name.
var forbiddenRanges = []addressRange{
	// IPv4.
	{prefix: netip.MustParsePrefix("0.0.0.0/8"), name: "unspecified"}, // Linux connects 0.0.0.0 to the local host
	{prefix: netip.MustParsePrefix("10.0.0.0/8"), name: "private"},
	{prefix: netip.MustParsePrefix("100.64.0.0/10"), name: "carrier-grade NAT"},
	{prefix: netip.MustParsePrefix("127.0.0.0/8"), name: "loopback"},
	{prefix: netip.MustParsePrefix("169.254.0.0/16"), name: "link-local (cloud metadata)"},
	{prefix: netip.MustParsePrefix("172.16.0.0/12"), name: "private"},
	{prefix: netip.MustParsePrefix("192.0.0.0/24"), name: "IETF protocol assignments"},
	{prefix: netip.MustParsePrefix("192.0.2.0/24"), name: "documentation"},
	{prefix: netip.MustParsePrefix("192.88.99.0/24"), name: "6to4 relay anycast"},
	{prefix: netip.MustParsePrefix("192.168.0.0/16"), name: "private"},
	{prefix: netip.MustParsePrefix("198.18.0.0/15"), name: "benchmarking"},
	{prefix: netip.MustParsePrefix("198.51.100.0/24"), name: "documentation"},
	{prefix: netip.MustParsePrefix("203.0.113.0/24"), name: "documentation"},
	{prefix: netip.MustParsePrefix("224.0.0.0/4"), name: "multicast"},
	{prefix: netip.MustParsePrefix("255.255.255.255/32"), name: "broadcast"},
	{prefix: netip.MustParsePrefix("240.0.0.0/4"), name: "reserved"},

	// IPv6. IPv4-mapped addresses (::ffff:0:0/96) are unmapped first.
	{prefix: netip.MustParsePrefix("::/128"), name: "unspecified"},
	{prefix: netip.MustParsePrefix("::1/128"), name: "loopback"},
	// Deprecated and never routed; refused whole rather than by the IPv4
	// address it embeds, since a host may still route it to itself.
	{prefix: netip.MustParsePrefix("::/96"), name: "IPv4-compatible"},
	{prefix: netip.MustParsePrefix("::ffff:0:0:0/96"), name: "IPv4-translated"},
	{prefix: netip.MustParsePrefix("64:ff9b::/96"), name: "NAT64", embedded: lastFourBytes},
	{prefix: netip.MustParsePrefix("64:ff9b:1::/48"), name: "local-use NAT64"},
	{prefix: netip.MustParsePrefix("100::/64"), name: "discard-only"},
	// Teredo embeds the client's address obfuscated and a relay on the
	// host may tunnel to it; nothing legitimate needs it any more.
	{prefix: netip.MustParsePrefix("2001::/32"), name: "Teredo"},
	{prefix: netip.MustParsePrefix("2001:2::/48"), name: "benchmarking"},
	{prefix: netip.MustParsePrefix("2001:db8::/32"), name: "documentation"},
	{prefix: netip.MustParsePrefix("2002::/16"), name: "6to4", embedded: sixToFourAddress},
	{prefix: netip.MustParsePrefix("3fff::/20"), name: "documentation"},
	{prefix: netip.MustParsePrefix("fc00::/7"), name: "unique-local"}, // includes AWS metadata fd00:ec2::254
	{prefix: netip.MustParsePrefix("fe80::/10"), name: "link-local"},
	{prefix: netip.MustParsePrefix("fec0::/10"), name: "site-local"},
	{prefix: netip.MustParsePrefix("ff00::/8"), name: "multicast"},
}

// forbiddenReason says why ip (without a zone) is forbidden, or "" if it is
// not.
func forbiddenReason(ip netip.Addr) string {
	if ip.Is4In6() {
		// The kernel connects ::ffff:a.b.c.d to a.b.c.d.
		v4 := ip.Unmap()
		if reason := forbiddenReason(v4); reason != "" {
			return fmt.Sprintf("an IPv4-mapped address of %s, %s", v4, reason)
		}
		return ""
	}
	for _, r := range forbiddenRanges {
		if !r.prefix.Contains(ip) {
			continue
		}
		if r.embedded == nil {
			return fmt.Sprintf("in the %s range %s", r.name, r.prefix)
		}
		v4 := r.embedded(ip)
		if reason := forbiddenReason(v4); reason != "" {
			return fmt.Sprintf("a %s address of %s, %s", r.name, v4, reason)
		}
		return ""
	}
	return ""
}

// lastFourBytes is the IPv4 address of a NAT64 address (RFC 6052, /96).
func lastFourBytes(ip netip.Addr) netip.Addr {
	b := ip.As16()
	return netip.AddrFrom4([4]byte(b[12:16]))
}

// sixToFourAddress is the IPv4 address of a 6to4 address: 2002:AABB:CCDD::.
func sixToFourAddress(ip netip.Addr) netip.Addr {
	b := ip.As16()
	return netip.AddrFrom4([4]byte(b[2:6]))
}
