package lookup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/lookuptest"
	"github.com/phonepipe/phonepipe/transport/lookup"
)

// memStore is an in-memory CallStore.
type memStore struct {
	mu       sync.Mutex
	due      []domain.LookupCall
	leases   map[string]string // e164 → token
	outcomes map[string]domain.Lookup
	released int
}

func newMemStore(numbers ...string) *memStore {
	s := &memStore{leases: map[string]string{}, outcomes: map[string]domain.Lookup{}}
	s.add(numbers...)
	return s
}

func (s *memStore) add(numbers ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range numbers {
		s.due = append(s.due, domain.LookupCall{Tenant: "t", E164: n, Generation: 1})
	}
}

func (s *memStore) ClaimDue(_ context.Context, _ time.Time, _ time.Duration, token string, limit int) ([]domain.LookupCall, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(limit, len(s.due))
	out := slices.Clone(s.due[:n])
	s.due = s.due[n:]
	for i := range out {
		out[i].Attempts++
		s.leases[out[i].E164] = token
	}
	return out, nil
}

func (s *memStore) Settle(_ context.Context, token string, c domain.LookupCall, lk domain.Lookup, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases[c.E164] != token {
		return false, nil
	}
	delete(s.leases, c.E164)
	s.outcomes[c.E164] = lk
	return true, nil
}

func (s *memStore) Release(_ context.Context, token string, c domain.LookupCall) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases[c.E164] == token {
		delete(s.leases, c.E164)
		c.Attempts--
		s.due = append(s.due, c)
		s.released++
	}
	return nil
}

func (s *memStore) results() map[string]domain.Lookup {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]domain.Lookup, len(s.outcomes))
	for k, v := range s.outcomes {
		out[k] = v
	}
	return out
}

// memStreams hands out versions from 1 per stream.
type memStreams struct {
	mu    sync.Mutex
	heads map[domain.StreamID]int64
}

func (m *memStreams) Next(_ context.Context, streams []domain.StreamID) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.heads == nil {
		m.heads = map[domain.StreamID]int64{}
	}
	out := make([]int64, len(streams))
	for i, s := range streams {
		m.heads[s]++
		out[i] = m.heads[s]
	}
	return out, nil
}

// memEvents captures published messages.
type memEvents struct {
	mu  sync.Mutex
	got []domain.LookupsRecorded
}

func (m *memEvents) Publish(_ context.Context, ev any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, *ev.(*domain.LookupsRecorded))
	return nil
}

// circuitLog records circuit changes and outcomes.
type circuitLog struct {
	mu      sync.Mutex
	changes []string
}

func (c *circuitLog) LookupFinished(string, string) {}
func (c *circuitLog) CircuitChanged(from, to string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changes = append(c.changes, from+">"+to)
}
func (c *circuitLog) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.changes)
}

// harness runs a worker against a store until the test ends.
type harness struct {
	store  *memStore
	events *memEvents
	stop   func()
}

func startWorker(t *testing.T, cfg lookup.Config, store *memStore) *harness {
	t.Helper()
	h := &harness{store: store, events: &memEvents{}}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	if cfg.RetryInitial == 0 {
		cfg.RetryInitial = 10 * time.Millisecond
	}
	cfg.BatchDelay = 5 * time.Millisecond
	w, err := lookup.NewWorker(lookup.WorkerConfig{Config: cfg, Store: store, Streams: &memStreams{}, Events: h.events,
		InTx: func(ctx context.Context, fn func(ctx context.Context) error) error { return fn(ctx) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

// wait returns the outcomes once n calls are settled.
func (h *harness) wait(t *testing.T, n int, timeout time.Duration) map[string]domain.Lookup {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		got := h.store.results()
		if len(got) >= n {
			return got
		}
		if time.Now().After(end) {
			t.Fatalf("%d of %d calls settled after %s: %v", len(got), n, timeout, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func numbers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("+3630%07d", 100+i)
	}
	return out
}

func TestRetryAfterDelaysTheNextAttempt(t *testing.T) {
	p := lookuptest.Start(t)
	p.SetMode(lookuptest.RateLimited)
	p.SetLimited(1, 1)
	nums := numbers(3)
	h := startWorker(t, lookup.Config{URL: p.URL(), Concurrency: 1}, newMemStore(nums...))
	got := h.wait(t, 3, 10*time.Second)
	for n, lk := range got {
		if lk.Status != domain.LookupOK {
			t.Errorf("%s: %+v, want ok", n, lk)
		}
	}
	reqs := p.Requests()
	if len(reqs) != 4 || reqs[0].Status != 429 {
		t.Fatalf("requests %+v, want a 429 and then three answers", reqs)
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < time.Second {
		t.Errorf("next request %s after the 429 with Retry-After: 1, want at least 1s", gap)
	}
	if got[reqs[0].E164].Attempts != 2 {
		t.Errorf("the rate-limited call took %d attempts, want 2", got[reqs[0].E164].Attempts)
	}
}

func TestRetryAfterBeyondTheBudgetSkips(t *testing.T) {
	p := lookuptest.Start(t)
	p.SetMode(lookuptest.RateLimited)
	p.SetLimited(100, 60)
	start := time.Now()
	h := startWorker(t, lookup.Config{URL: p.URL(), Concurrency: 1, RetryBudget: time.Second}, newMemStore(numbers(3)...))
	got := h.wait(t, 3, 10*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s: the calls waited for a Retry-After beyond their budget", took)
	}
	for n, lk := range got {
		if lk.Status != domain.LookupSkipped || lk.Reason != domain.LookupReasonRateLimited {
			t.Errorf("%s: %+v, want skipped (rate_limited)", n, lk)
		}
	}
	if reqs := p.Requests(); len(reqs) != 1 {
		t.Errorf("%d requests, want 1: after Retry-After: 60 nothing may be sent for a minute", len(reqs))
	}
}

func TestFlakyProviderIsRetried(t *testing.T) {
	p := lookuptest.Start(t)
	p.SetMode(lookuptest.Flaky)
	nums := numbers(10)
	h := startWorker(t, lookup.Config{URL: p.URL(), Concurrency: 3, BreakerFailures: 100}, newMemStore(nums...))
	got := h.wait(t, len(nums), 10*time.Second)
	for n, lk := range got {
		if lk.Status != domain.LookupOK || lk.Carrier != "Test Mobile" {
			t.Errorf("%s: %+v, want ok after retries", n, lk)
		}
	}
	if reqs := p.Requests(); len(reqs) < 15 {
		t.Errorf("%d requests for %d calls with every other one failing, want retries", len(reqs), len(nums))
	}
}

func TestSlowProviderTimesOut(t *testing.T) {
	p := lookuptest.Start(t)
	p.SetMode(lookuptest.Slow)
	p.SetDelay(2 * time.Second)
	start := time.Now()
	h := startWorker(t, lookup.Config{URL: p.URL(), Timeout: 150 * time.Millisecond, MaxRetries: 1}, newMemStore(numbers(2)...))
	got := h.wait(t, 2, 10*time.Second)
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("took %s, want the timeouts to end the calls", took)
	}
	for n, lk := range got {
		if lk.Status != domain.LookupFailed || lk.Reason != domain.LookupReasonTimeout || lk.Attempts != 2 {
			t.Errorf("%s: %+v, want failed (timeout) after 2 attempts", n, lk)
		}
	}
}

func TestCircuitOpensAndCloses(t *testing.T) {
	p := lookuptest.Start(t)
	p.Down()
	log := &circuitLog{}
	store := newMemStore(numbers(6)...)
	h := startWorker(t, lookup.Config{URL: p.URL(), Concurrency: 1, BreakerFailures: 2, BreakerCooldown: 300 * time.Millisecond,
		MaxRetries: 2, Observer: log}, store)
	got := h.wait(t, 6, 10*time.Second)
	skipped := 0
	for n, lk := range got {
		switch {
		case lk.Status == domain.LookupSkipped && lk.Reason == domain.LookupReasonCircuitOpen:
			skipped++
		case lk.Status == domain.LookupFailed && lk.Reason == domain.LookupReasonUnreachable:
		default:
			t.Errorf("%s: %+v, want failed (unreachable) or skipped (circuit_open)", n, lk)
		}
	}
	if skipped < 5 {
		t.Errorf("%d calls skipped, want all after the circuit opened: %v", skipped, got)
	}
	if c := log.list(); !slices.Equal(c, []string{"closed>open"}) {
		t.Errorf("circuit changes %v, want it open", c)
	}

	p.Up()
	time.Sleep(350 * time.Millisecond)
	later := []string{"+36301111111", "+36301111112"}
	store.add(later...)
	got = h.wait(t, 8, 10*time.Second)
	for _, n := range later {
		if got[n].Status != domain.LookupOK {
			t.Errorf("%s after recovery: %+v, want ok", n, got[n])
		}
	}
	if c := log.list(); !slices.Equal(c, []string{"closed>open", "open>half-open", "half-open>closed"}) {
		t.Errorf("circuit changes %v, want it closed again", c)
	}
}

func TestResponsesMapped(t *testing.T) {
	for _, tc := range []struct {
		mode  lookuptest.Mode
		check func(lk domain.Lookup) bool
		want  string
	}{
		{lookuptest.Twilio, func(lk domain.Lookup) bool {
			return lk.Status == domain.LookupOK && lk.LineType == "mobile" && lk.MCC == "216" && lk.MNC == "30" &&
				lk.CallerName == "TEST CALLER" && lk.Valid != nil && *lk.Valid && lk.Raw == nil
		}, "ok with the Twilio fields"},
		{lookuptest.OtherJSON, func(lk domain.Lookup) bool {
			var raw map[string]any
			return lk.Status == domain.LookupOK && json.Unmarshal(lk.Raw, &raw) == nil && raw["score"] == 0.97 && lk.LineType == ""
		}, "ok with the body as raw"},
		{lookuptest.BigJSON, func(lk domain.Lookup) bool {
			return lk.Status == domain.LookupOK && lk.Raw == nil && lk.RawTruncated
		}, "ok with raw_truncated"},
		{lookuptest.NotJSON, func(lk domain.Lookup) bool {
			return lk.Status == domain.LookupFailed && lk.Reason == domain.LookupReasonInvalidResponse && lk.Attempts == 1
		}, "failed (invalid_response) without retries"},
	} {
		p := lookuptest.Start(t)
		p.SetMode(tc.mode)
		h := startWorker(t, lookup.Config{URL: p.URL()}, newMemStore("+36301234567"))
		lk := h.wait(t, 1, 10*time.Second)["+36301234567"]
		if !tc.check(lk) {
			b, _ := json.Marshal(lk)
			t.Errorf("mode %d: lookup %s, want %s", tc.mode, b, tc.want)
		}
		h.stop()
	}
}

func TestRecordedEventsCarryVersions(t *testing.T) {
	p := lookuptest.Start(t)
	h := startWorker(t, lookup.Config{URL: p.URL()}, newMemStore(numbers(3)...))
	h.wait(t, 3, 10*time.Second)
	h.stop()
	h.events.mu.Lock()
	defer h.events.mu.Unlock()
	seen := 0
	for _, m := range h.events.got {
		for _, rl := range m.Lookups {
			d, err := domain.DecodeLookupEvent(rl.Event)
			if err != nil {
				t.Fatal(err)
			}
			if rl.Tenant != "t" || rl.Event.Stream != domain.NumberStream("t", d.E164) || rl.Event.Version != 1 ||
				rl.Event.Type != domain.EventLookupSucceeded || d.Generation != 1 {
				t.Errorf("recorded %+v (%+v)", rl, d)
			}
			seen++
		}
	}
	if seen != 3 {
		t.Errorf("%d lookups recorded, want 3", seen)
	}
}

func TestShutdownReleasesCallsInFlight(t *testing.T) {
	p := lookuptest.Start(t)
	p.SetMode(lookuptest.Slow)
	p.SetDelay(10 * time.Second)
	store := newMemStore(numbers(2)...)
	h := startWorker(t, lookup.Config{URL: p.URL(), Timeout: 20 * time.Second}, store)
	for len(p.Requests()) < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	h.stop()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stopping took %s with calls in flight", took)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.released != 2 || len(store.outcomes) != 0 || len(store.due) != 2 {
		t.Errorf("after stopping: %d released, outcomes %v, %d due; want both calls given back", store.released, store.outcomes, len(store.due))
	}
}
