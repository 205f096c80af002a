package testenv

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Proxy is an in-process toxiproxy (github.com/Shopify/toxiproxy/v2) in
// front of one TCP upstream: tests point a client at Addr and then slow,
// cut or reset its traffic. It is stopped when the test ends.
type Proxy struct {
	t  testing.TB
	mu sync.Mutex
	p  *toxiproxy.Proxy
}

// NewProxy starts a proxy on a loopback port in front of upstream
// (host:port).
func NewProxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start toxiproxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{t: t, p: p}
}

// Addr is the address clients dial (host:port). It stays the same across
// Cut and Restore.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.p.Listen
}

// Cut takes the upstream away: the proxy stops listening (new connections
// are refused) and closes every connection it carries.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p.Stop()
}

// Restore listens again on the same address after Cut.
func (p *Proxy) Restore() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.p.Start(); err != nil {
		p.t.Errorf("restart toxiproxy %s on %s: %v", p.p.Name, p.p.Listen, err)
	}
}

// Toxic adds a toxic: typ is a toxiproxy toxic type ("latency",
// "reset_peer", "timeout", "bandwidth", …), stream "upstream" or
// "downstream", attrs its attributes (e.g. {"latency": 100, "jitter": 50}).
// It applies to open connections and new ones until RemoveToxic.
func (p *Proxy) Toxic(name, typ, stream string, attrs map[string]any) {
	p.t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(string(body))); err != nil {
		p.t.Errorf("add toxic %s to %s: %v", name, p.p.Name, err)
	}
}

// RemoveToxic removes a toxic added by Toxic.
func (p *Proxy) RemoveToxic(name string) {
	p.t.Helper()
	if err := p.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		p.t.Errorf("remove toxic %s from %s: %v", name, p.p.Name, err)
	}
}

// ProxiedPostgres is Postgres behind a proxy: it returns the DSN of a fresh
// schema through the proxy (for the code under test), the same DSN direct
// to the server (for the test's own checks) and the proxy. The test is
// skipped when $PHONEPIPE_TEST_POSTGRES_DSN is not set.
func ProxiedPostgres(t testing.TB) (proxied, direct string, p *Proxy) {
	t.Helper()
	direct = Postgres(t)
	cfg, err := pgx.ParseConfig(os.Getenv(PostgresEnv))
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		t.Skipf("%s names a Unix socket (%s); the fault tests need PostgreSQL over TCP", PostgresEnv, cfg.Host)
	}
	p = NewProxy(t, "postgres", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	return withHostPort(t, direct, p.Addr()), direct, p
}

// withHostPort points a pgx DSN (URL or key=value form) at hostport.
func withHostPort(t testing.TB, dsn, hostport string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse postgres dsn: %v", err)
		}
		u.Host = hostport
		return u.String()
	}
	host, port, _ := net.SplitHostPort(hostport)
	return dsn + " host=" + host + " port=" + port
}

// ProxiedKafka starts an in-process Kafka-protocol cluster (kfake) with one
// broker whose traffic all goes through a proxy: the broker listens on a
// port of its own but advertises the proxy's address in its metadata, so
// clients that bootstrap through the proxy keep using it. It returns the
// bootstrap addresses (the proxy's) and the proxy.
func ProxiedKafka(t testing.TB) ([]string, *Proxy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, "kafka", ln.Addr().String())
	advertised, err := net.ResolveTCPAddr("tcp", p.Addr())
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(string, string) (net.Listener, error) {
		return advertisedListener{Listener: ln, addr: advertised}, nil
	}))
	if err != nil {
		_ = ln.Close()
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs(), p
}

// advertisedListener accepts on its listener but reports another address,
// which kfake advertises as the broker's.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }
