// Package lookuptest is a fake third-party lookup provider (Twilio Lookup
// v2 shaped) for tests, with the failure modes the lookup stage must
// survive: slow, flaky, down, rate limited and wrong answers.
package lookuptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mode is how the provider answers.
type Mode int

// The provider's modes.
const (
	// Twilio answers every request at once with a Twilio Lookup v2 body.
	Twilio Mode = iota
	// Slow answers like Twilio after the delay (SetDelay; default 2s).
	Slow
	// Flaky answers every other request of each number with 500 (the first
	// one fails), the rest like Twilio.
	Flaky
	// RateLimited answers 429 with Retry-After (SetRetryAfter) to the
	// first limited requests (SetLimited), then like Twilio.
	RateLimited
	// OtherJSON answers with JSON that is not Twilio-shaped.
	OtherJSON
	// BigJSON answers with other JSON larger than the stage keeps as raw.
	BigJSON
	// NotJSON answers 200 with an HTML page.
	NotJSON
)

// Request is one request the provider got.
type Request struct {
	E164   string
	At     time.Time
	Status int
	Header http.Header
}

// Provider is a running fake provider.
type Provider struct {
	t    testing.TB
	addr string

	mu         sync.Mutex
	mode       Mode
	delay      time.Duration
	retryAfter int
	limited    int
	requests   []Request
	held       chan struct{} // while not nil, answers wait for it to close (Hold)
	srv        *http.Server
	served     chan struct{}
}

// Start runs a provider on a free loopback port until the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("lookuptest: listen: %v", err)
	}
	p := &Provider{t: t, addr: ln.Addr().String(), delay: 2 * time.Second, retryAfter: 1, limited: 1}
	p.serve(ln)
	t.Cleanup(p.Down)
	t.Cleanup(p.Release) // runs first: Down waits for the handlers
	return p
}

// URL is the provider's --lookup-url template.
func (p *Provider) URL() string {
	return "http://" + p.addr + "/v2/PhoneNumbers/{e164}?Fields=line_type_intelligence,caller_name"
}

// SetMode changes how the provider answers from now on.
func (p *Provider) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
}

// SetDelay sets the delay of Slow.
func (p *Provider) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// SetLimited makes RateLimited answer the next n requests with 429 and
// Retry-After: seconds.
func (p *Provider) SetLimited(n, seconds int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limited, p.retryAfter = n, seconds
}

// Hold makes the provider keep every request it gets from now on waiting,
// unanswered, until Release (or the caller gives up). A test uses it to
// look at the state of the pipeline while lookups are pending, without
// racing a delay.
func (p *Provider) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = make(chan struct{})
	}
}

// Release answers the held requests, each as the mode says, and stops
// holding.
func (p *Provider) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

// Down stops the provider: its address refuses connections.
func (p *Provider) Down() {
	p.mu.Lock()
	srv, served := p.srv, p.served
	p.srv = nil
	p.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-served
}

// Up starts a stopped provider again on the same address.
func (p *Provider) Up() {
	p.t.Helper()
	var (
		ln  net.Listener
		err error
	)
	for range 50 { // the port may linger for a moment after Close
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("lookuptest: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func (p *Provider) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/PhoneNumbers/{e164}", p.answer)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	p.mu.Lock()
	p.srv, p.served = srv, served
	p.mu.Unlock()
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.t.Errorf("lookuptest: serve: %v", err)
		}
	}()
}

// Requests returns the requests so far.
func (p *Provider) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// Counts returns how many requests each number got.
func (p *Provider) Counts() map[string]int {
	out := map[string]int{}
	for _, r := range p.Requests() {
		out[r.E164]++
	}
	return out
}

func (p *Provider) answer(w http.ResponseWriter, r *http.Request) {
	e164 := r.PathValue("e164")
	p.mu.Lock()
	mode, delay, held := p.mode, p.delay, p.held
	// Flaky alternates per number (its first request fails, the next one
	// succeeds, …): half the requests fail, and a retried call always gets
	// through, however concurrent calls interleave.
	prior := 0
	for _, r := range p.requests {
		if r.E164 == e164 {
			prior++
		}
	}
	status := http.StatusOK
	switch {
	case mode == Flaky && prior%2 == 0:
		status = http.StatusInternalServerError
	case mode == RateLimited && p.limited > 0:
		p.limited--
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	p.requests = append(p.requests, Request{E164: e164, At: time.Now(), Status: status, Header: r.Header.Clone()})
	p.mu.Unlock()

	if held != nil {
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
	}
	if mode == Slow {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	switch mode {
	case OtherJSON:
		writeJSON(w, map[string]any{"number": e164, "score": 0.97, "tags": []string{"a", "b"}})
	case BigJSON:
		writeJSON(w, map[string]any{"number": e164, "padding": strings.Repeat("x", 8<<10)})
	case NotJSON:
		w.Header().Set("Content-Type", "text/html")
		_, _ = fmt.Fprint(w, "<html><body>maintenance</body></html>")
	default:
		writeJSON(w, TwilioBody(e164))
	}
}

// TwilioBody is the provider's Twilio Lookup v2 answer for e164: a valid
// mobile number of "Test Mobile" (MCC 216, MNC 30) whose caller is
// "TEST CALLER", a consumer.
func TwilioBody(e164 string) map[string]any {
	return map[string]any{
		"calling_country_code": "36",
		"country_code":         "HU",
		"phone_number":         e164,
		"national_format":      e164,
		"valid":                true,
		"validation_errors":    []string{},
		"caller_name": map[string]any{
			"caller_name": "TEST CALLER", "caller_type": "CONSUMER", "error_code": nil,
		},
		"sim_swap":        nil,
		"call_forwarding": nil,
		"line_type_intelligence": map[string]any{
			"carrier_name": "Test Mobile", "error_code": nil, "mobile_country_code": "216",
			"mobile_network_code": "30", "type": "mobile",
		},
		"url": "https://lookups.twilio.com/v2/PhoneNumbers/" + e164,
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
