package webhooks

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// blockedPrefixes returns the destination ranges the SSRF guard refuses in
// addition to what the netip.Addr predicates in isBlockedAddr cover. It is a
// function, not a package variable, so the list cannot be changed at run time.
func blockedPrefixes() [8]netip.Prefix {
	v4 := func(a, b, c, d byte, bits int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{a, b, c, d}), bits)
	}
	return [...]netip.Prefix{
		v4(0, 0, 0, 0, 8),          // "this network"
		v4(100, 64, 0, 0, 10),      // carrier-grade NAT (RFC 6598)
		v4(192, 0, 0, 0, 24),       // IETF protocol assignments
		v4(198, 18, 0, 0, 15),      // benchmarking
		v4(240, 0, 0, 0, 4),        // reserved, includes broadcast
		v4(169, 254, 169, 254, 32), // cloud metadata (also covered by link-local)
		netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfe, 0xc0}), 10),                // deprecated site-local
		netip.PrefixFrom(netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 0, 1}), 48), // local-use NAT64 (RFC 8215)
	}
}

// nat64 is the well-known NAT64 prefix 64:ff9b::/96 (RFC 6052); its last 32 bits
// embed an IPv4 address, which is classified instead.
func nat64() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b}), 96)
}

// isBlockedAddr reports whether the SSRF guard refuses to connect to ip:
// unspecified, loopback, private (RFC 1918 and fc00::/7), link-local,
// multicast, CGNAT, metadata and other special-purpose ranges, including
// IPv4-mapped and NAT64 forms of those. An invalid address is blocked.
func isBlockedAddr(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.WithZone("").Unmap()
	if nat64().Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:16]))
	}
	if ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return true
	}
	for _, p := range blockedPrefixes() {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// guardControl is a net.Dialer Control function. It runs after name resolution,
// once per resolved address and before the connect system call, and refuses
// blocked addresses with ErrBlockedAddress.
func guardControl(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %q not allowed", ErrBlockedAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q: %w", ErrBlockedAddress, address, err)
	}
	if isBlockedAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrBlockedAddress, ap.Addr())
	}
	return nil
}

// NewHTTPClient returns the client the dispatcher sends with. It never follows
// redirects (a 3xx response is returned as is), ignores proxy environment
// variables, and gives up on a request after timeout (no limit when <= 0).
// Unless allowPrivate is set, its dialer checks every resolved address just
// before connecting and refuses loopback, private, link-local, CGNAT,
// unique-local, multicast, unspecified and metadata addresses (also in their
// IPv4-mapped IPv6 form) with an error wrapping ErrBlockedAddress; checking at
// dial time rather than at URL validation also defeats DNS rebinding.
func NewHTTPClient(allowPrivate bool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if timeout > 0 && timeout < dialer.Timeout {
		dialer.Timeout = timeout
	}
	if !allowPrivate {
		dialer.Control = guardControl
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would be dialed instead of the target and bypass the guard
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
