package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"
)

func TestIsBlockedAddr(t *testing.T) {
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		{"10.0.0.1", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"100.64.0.1", true},
		{"100.127.255.254", true},
		{"169.254.169.254", true},
		{"169.254.1.1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"fc00::1", true},
		{"fd00:ec2::254", true},
		{"fec0::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.1.2.3", true},
		{"::ffff:169.254.169.254", true},
		{"64:ff9b::7f00:1", true},    // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"64:ff9b:1::1", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"ff02::1", true},
		{"ff05::1", true},
		{"255.255.255.255", true},
		{"240.0.0.1", true},
		{"198.18.0.1", true},
		{"192.0.0.8", true},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"192.169.0.1", false},
		{"2606:4700:4700::1111", false},
		{"::ffff:8.8.8.8", false},
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := isBlockedAddr(netip.MustParseAddr(tt.addr)); got != tt.blocked {
				t.Fatalf("isBlockedAddr(%s) = %v, want %v", tt.addr, got, tt.blocked)
			}
		})
	}
	if !isBlockedAddr(netip.Addr{}) {
		t.Fatal("the invalid address is not blocked")
	}
}

func TestGuardControl(t *testing.T) {
	if err := guardControl("tcp4", "8.8.8.8:443", nil); err != nil {
		t.Fatalf("public address refused: %v", err)
	}
	for _, c := range []struct{ network, address string }{
		{"tcp4", "127.0.0.1:80"},
		{"tcp6", "[::1]:80"},
		{"tcp6", "[::ffff:127.0.0.1]:80"},
		{"udp4", "8.8.8.8:53"},
		{"tcp", "not-an-address"},
	} {
		if err := guardControl(c.network, c.address, nil); !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("guardControl(%s, %s) = %v, want ErrBlockedAddress", c.network, c.address, err)
		}
	}
}

// TestHTTPClientRefusesPrivateDestinations sends through the guarded client to
// blocked destinations. Before any request it checks that the guard refuses
// every address the host resolves to, so a broken guard fails the test
// instead of sending traffic to a private address.
func TestHTTPClientRefusesPrivateDestinations(t *testing.T) {
	rcv := newReceiver(t, statusSeq(http.StatusOK))
	_, port, err := net.SplitHostPort(rcv.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := NewHTTPClient(false, 2*time.Second)
	for _, host := range []string{
		"127.0.0.1", "[::1]", "10.0.0.1", "[::ffff:127.0.0.1]", "100.64.0.1", "169.254.169.254", "localhost",
	} {
		t.Run(host, func(t *testing.T) {
			target := "http://" + net.JoinHostPort(trimBrackets(host), port) + "/hook"
			u, err := url.Parse(target)
			if err != nil {
				t.Fatal(err)
			}
			addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", u.Hostname())
			if err != nil || len(addrs) == 0 {
				t.Fatalf("resolve %s: %v %v", u.Hostname(), addrs, err)
			}
			for _, a := range addrs {
				if err := guardControl("tcp", netip.AddrPortFrom(a, 80).String(), nil); !errors.Is(err, ErrBlockedAddress) {
					t.Fatalf("guard does not refuse %s (%v); not sending", a, err)
				}
			}
			resp, err := client.Post(target, "application/json", nil)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("request to %s succeeded with %s", target, resp.Status)
			}
			if !errors.Is(err, ErrBlockedAddress) {
				t.Fatalf("request to %s: %v, want ErrBlockedAddress", target, err)
			}
		})
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}

	// The same receiver is reachable when private destinations are allowed.
	resp, err := NewHTTPClient(true, 2*time.Second).Post(rcv.url(), "application/json", nil)
	if err != nil {
		t.Fatalf("allowPrivate client: %v", err)
	}
	resp.Body.Close()
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want 1", n)
	}
}

func trimBrackets(host string) string {
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		return host[1 : len(host)-1]
	}
	return host
}

func TestHTTPClientDoesNotFollowRedirects(t *testing.T) {
	hits := make(chan string, 10)
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { hits <- r.URL.Path })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := NewHTTPClient(true, 2*time.Second).Post(srv.URL+"/hook", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("status %d, want 307", resp.StatusCode)
	}
	close(hits)
	var paths []string
	for p := range hits {
		paths = append(paths, p)
	}
	if len(paths) != 1 || paths[0] != "/hook" {
		t.Fatalf("server saw %v, want only /hook", paths)
	}
}
