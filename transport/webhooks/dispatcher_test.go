package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// subscribe creates a subscription of tenant "acme" to rcv for
// import.completed and lets rcv verify with its secret.
func subscribe(t *testing.T, s *Store, rcv *receiver) Subscription {
	t.Helper()
	sub, err := s.CreateSubscription(context.Background(), "acme", rcv.url(), []string{"import.completed"})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecret(sub.Secret)
	return sub
}

// checkRequests asserts every request carried webhookID, a valid signature and
// the same body.
func checkRequests(t *testing.T, reqs []request, webhookID string) {
	t.Helper()
	for i, r := range reqs {
		if got := r.header.Get(HeaderID); got != webhookID {
			t.Errorf("request %d: webhook-id %q, want %q", i, got, webhookID)
		}
		if r.verifyErr != nil {
			t.Errorf("request %d: signature: %v", i, r.verifyErr)
		}
		if !bytes.Equal(r.body, reqs[0].body) {
			t.Errorf("request %d: body %s differs from first %s", i, r.body, reqs[0].body)
		}
	}
}

func TestDispatcherRetriesFollowSchedule(t *testing.T) {
	s, _ := newTestStore(t)
	rcv := newReceiver(t, statusSeq(500, 500, 200))
	sub := subscribe(t, s, rcv)
	ev := testEvent("evt_1", "acme", "import.completed")
	enqueue(t, s, ev, "")
	schedule := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	var mu sync.Mutex
	var outcomes []string
	cfg := testConfig(schedule...)
	cfg.OnAttempt = func(o string) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock() }
	startDispatcher(t, s, cfg)

	d := waitStatus(t, s, "acme", sub.ID, StatusSucceeded)
	if got := statusCodes(d.Attempts); !slices.Equal(got, []int{500, 500, 200}) {
		t.Fatalf("attempt status codes %v", got)
	}
	for i := 1; i < len(d.Attempts); i++ {
		// Lower bound only: attempt i is not made before Schedule[i] (-10% jitter).
		if gap, floor := d.Attempts[i].At.Sub(d.Attempts[i-1].At), schedule[i]*9/10; gap < floor {
			t.Errorf("attempt %d came %s after the previous, before the schedule's %s", i, gap, floor)
		}
	}
	if d.Attempts[0].Error == "" || d.Attempts[2].Error != "" || d.NextAttemptAt != nil {
		t.Errorf("unexpected attempts/state: %+v", d)
	}
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	checkRequests(t, reqs, d.WebhookID)
	if !strings.HasPrefix(d.WebhookID, "msg_") {
		t.Errorf("webhook-id %q", d.WebhookID)
	}
	h := reqs[0].header
	if h.Get("Content-Type") != "application/json" || h.Get("X-Correlation-Id") != "corr-evt_1" {
		t.Errorf("headers %v", h)
	}
	var body struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatalf("body %s: %v", reqs[0].body, err)
	}
	if body.Type != "import.completed" || !body.Timestamp.Equal(ev.Timestamp) || string(body.Data) != string(ev.Data) {
		t.Errorf("body %s", reqs[0].body)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(outcomes, []string{OutcomeFailure, OutcomeFailure, OutcomeSuccess}) {
		t.Errorf("OnAttempt outcomes %v", outcomes)
	}
}

func TestDispatcherFailsWhenScheduleExhausted(t *testing.T) {
	s, _ := newTestStore(t)
	rcv := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, strings.Repeat("x", 2000))
	})
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	startDispatcher(t, s, testConfig(0, 10*time.Millisecond, 10*time.Millisecond))

	d := waitStatus(t, s, "acme", sub.ID, StatusFailed)
	if got := statusCodes(d.Attempts); !slices.Equal(got, []int{500, 500, 500}) {
		t.Fatalf("attempt status codes %v", got)
	}
	if d.NextAttemptAt != nil {
		t.Errorf("failed delivery has a next attempt %v", d.NextAttemptAt)
	}
	if a := d.Attempts[0]; len(a.ResponseSnippet) != 512 || a.LatencyMS < 0 || a.At.IsZero() {
		t.Errorf("attempt %+v (snippet %d bytes)", a, len(a.ResponseSnippet))
	}
	if n := len(rcv.requests()); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
}

func TestDispatcherGoneDisablesSubscription(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	rcv := newReceiver(t, statusSeq(http.StatusGone))
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	startDispatcher(t, s, testConfig(0, 10*time.Millisecond, 10*time.Millisecond))

	d := waitStatus(t, s, "acme", sub.ID, StatusFailed)
	if got := statusCodes(d.Attempts); !slices.Equal(got, []int{410}) {
		t.Fatalf("attempt status codes %v", got)
	}
	subs, err := s.ListSubscriptions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !subs[0].Disabled || !strings.Contains(subs[0].DisabledReason, "410") {
		t.Fatalf("subscription after 410: %+v", subs[0])
	}
	// A disabled subscription gets no new deliveries.
	enqueue(t, s, testEvent("evt_2", "acme", "import.completed"), "")
	onlyDelivery(t, s, "acme", sub.ID)
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestDispatcherDisablesSubscriptionFailingTooLong(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	rcv := newReceiver(t, statusSeq(500))
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	cfg := testConfig(0, 20*time.Millisecond, 20*time.Millisecond, 20*time.Millisecond)
	cfg.DisableAfter = 10 * time.Millisecond
	startDispatcher(t, s, cfg)

	// The first failure starts the streak; the second, at least 18ms later,
	// finds it older than DisableAfter.
	d := waitStatus(t, s, "acme", sub.ID, StatusFailed)
	if len(d.Attempts) != 2 {
		t.Fatalf("%d attempts, want 2", len(d.Attempts))
	}
	subs, _ := s.ListSubscriptions(ctx, "acme")
	if !subs[0].Disabled || !strings.Contains(subs[0].DisabledReason, "failing continuously") {
		t.Fatalf("subscription: %+v", subs[0])
	}
}

func TestDispatcherHonoursRetryAfter(t *testing.T) {
	s, _ := newTestStore(t)
	rcv := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	var mu sync.Mutex
	var outcomes []string
	cfg := testConfig(0, 10*time.Millisecond, 10*time.Millisecond)
	cfg.OnAttempt = func(o string) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock() }
	startDispatcher(t, s, cfg)

	d := waitStatus(t, s, "acme", sub.ID, StatusSucceeded)
	if got := statusCodes(d.Attempts); !slices.Equal(got, []int{429, 200}) {
		t.Fatalf("attempt status codes %v", got)
	}
	if gap := d.Attempts[1].At.Sub(d.Attempts[0].At); gap < time.Second {
		t.Errorf("recorded retry %s after the 429, before Retry-After: 1", gap)
	}
	reqs := rcv.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second {
		t.Errorf("receiver saw the retry %s after the 429, before Retry-After: 1", gap)
	}
	checkRequests(t, reqs, d.WebhookID)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(outcomes, []string{OutcomeRateLimited, OutcomeSuccess}) {
		t.Errorf("OnAttempt outcomes %v", outcomes)
	}
}

// TestDispatcherReachesReceiverOnceBackUp sends a per-import webhook to a
// port nobody listens on (connection refused), then to a server that answers
// 503 twice, then 200: the event arrives, with one webhook-id throughout.
func TestDispatcherReachesReceiverOnceBackUp(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	secret, err := s.TenantSecret(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	ev := testEvent("evt_1", "acme", "import.completed")
	ev.TargetURL = "http://" + addr + "/hook"
	enqueue(t, s, ev, secret)
	schedule := []time.Duration{0}
	for range 300 {
		schedule = append(schedule, 10*time.Millisecond)
	}
	startDispatcher(t, s, testConfig(schedule...))

	eventually(t, "two refused attempts", func() bool {
		return len(onlyDelivery(t, s, "acme", "").Attempts) >= 2
	})
	rcv := &receiver{respond: statusSeq(503, 503, 200), secret: secret}
	var ln2 net.Listener
	eventually(t, "re-listening on "+addr, func() bool {
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv := httptest.NewUnstartedServer(rcv)
	srv.Listener.Close()
	srv.Listener = ln2
	srv.Start()
	defer srv.Close()

	d := waitStatus(t, s, "acme", "", StatusSucceeded)
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	checkRequests(t, reqs, d.WebhookID)
	codes := statusCodes(d.Attempts)
	refused := len(codes) - 3
	if refused < 2 || !slices.Equal(codes[refused:], []int{503, 503, 200}) {
		t.Fatalf("attempt status codes %v", codes)
	}
	for _, a := range d.Attempts[:refused] {
		if a.StatusCode != 0 || !strings.Contains(a.Error, "refused") {
			t.Errorf("refused attempt %+v", a)
		}
	}
}

func TestDispatcherDoesNotFollowRedirects(t *testing.T) {
	s, _ := newTestStore(t)
	var mu sync.Mutex
	var targetHits int
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		targetHits++
		mu.Unlock()
	}))
	defer target.Close()
	rcv := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.Header().Set("Location", target.URL+"/hook")
		w.WriteHeader(http.StatusFound)
	})
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	startDispatcher(t, s, testConfig(0, 10*time.Millisecond))

	d := waitStatus(t, s, "acme", sub.ID, StatusFailed)
	if got := statusCodes(d.Attempts); !slices.Equal(got, []int{302, 302}) {
		t.Fatalf("attempt status codes %v", got)
	}
	if !strings.Contains(d.Attempts[0].Error, "redirect") {
		t.Errorf("attempt error %q", d.Attempts[0].Error)
	}
	mu.Lock()
	defer mu.Unlock()
	if targetHits != 0 {
		t.Fatalf("redirect target got %d requests", targetHits)
	}
}

// TestDispatcherRestartContinuesRetries stops a dispatcher after the first
// (failed) attempt and starts a new one, on a new connection to the same
// database, which makes the pending retry.
func TestDispatcherRestartContinuesRetries(t *testing.T) {
	s, path := newTestStore(t)
	rcv := newReceiver(t, statusSeq(500, 200))
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := testConfig(0, 200*time.Millisecond, 10*time.Millisecond)
	cfg.OnAttempt = func(string) { cancel() } // stop right after the first attempt
	first, err := NewDispatcher(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	d := onlyDelivery(t, s, "acme", sub.ID)
	if d.Status != StatusPending || len(d.Attempts) != 1 || d.NextAttemptAt == nil {
		t.Fatalf("after the first dispatcher: %+v", d)
	}

	restarted := NewStore(openDB(t, path), s.dialect)
	startDispatcher(t, restarted, testConfig(0, 200*time.Millisecond, 10*time.Millisecond))
	d = waitStatus(t, restarted, "acme", sub.ID, StatusSucceeded)
	if got := statusCodes(d.Attempts); !slices.Equal(got, []int{500, 200}) {
		t.Fatalf("attempt status codes %v", got)
	}
	reqs := rcv.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	checkRequests(t, reqs, d.WebhookID)
}

// TestDispatchersShareOutbox runs two dispatchers (two "processes") on one
// database: every delivery is sent exactly once.
func TestDispatchersShareOutbox(t *testing.T) {
	s, path := newTestStore(t)
	rcv := newReceiver(t, statusSeq(200))
	sub := subscribe(t, s, rcv)
	const events = 30
	for i := range events {
		enqueue(t, s, testEvent(fmt.Sprintf("evt_%d", i), "acme", "import.completed"), "")
	}
	other := NewStore(openDB(t, path), s.dialect)
	cfg := testConfig(0, 10*time.Millisecond)
	cfg.Concurrency = 3
	startDispatcher(t, s, cfg)
	startDispatcher(t, other, cfg)

	eventually(t, "all delivered", func() bool {
		ds, err := s.ListDeliveries(context.Background(), "acme", sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds) == events && !slices.ContainsFunc(ds, func(d Delivery) bool { return d.Status != StatusSucceeded })
	})
	seen := map[string]int{}
	for _, r := range rcv.requests() {
		seen[r.header.Get(HeaderID)]++
		if r.verifyErr != nil {
			t.Errorf("signature: %v", r.verifyErr)
		}
	}
	if len(seen) != events {
		t.Fatalf("receiver saw %d distinct webhook-ids, want %d", len(seen), events)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("webhook-id %s sent %d times", id, n)
		}
	}
}

func TestDispatcherSSRFGuard(t *testing.T) {
	s, _ := newTestStore(t)
	rcv := newReceiver(t, statusSeq(200))
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	cfg := testConfig(0)
	cfg.AllowPrivate = false
	startDispatcher(t, s, cfg)

	d := waitStatus(t, s, "acme", sub.ID, StatusFailed)
	if len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 0 || !strings.Contains(d.Attempts[0].Error, ErrBlockedAddress.Error()) {
		t.Fatalf("attempts %+v", d.Attempts)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("receiver on 127.0.0.1 got %d requests", n)
	}
}

func TestDispatcherResend(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	rcv := newReceiver(t, statusSeq(500, 200))
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	startDispatcher(t, s, testConfig(0))

	failed := waitStatus(t, s, "acme", sub.ID, StatusFailed)
	if _, err := s.Resend(ctx, "acme", sub.ID, failed.ID); err != nil {
		t.Fatal(err)
	}
	d := waitStatus(t, s, "acme", sub.ID, StatusSucceeded)
	if got := statusCodes(d.Attempts); !slices.Equal(got, []int{500, 200}) {
		t.Fatalf("attempt status codes %v", got)
	}
	checkRequests(t, rcv.requests(), failed.WebhookID)
}

func TestDispatcherFailsDeliveriesOfDisabledSubscription(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	rcv := newReceiver(t, statusSeq(200))
	sub := subscribe(t, s, rcv)
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	if _, err := s.exec(ctx, s.db, `UPDATE webhook_subscriptions SET disabled = 1, disabled_reason = 'test' WHERE id = ?`, sub.ID); err != nil {
		t.Fatal(err)
	}
	startDispatcher(t, s, testConfig(0))
	d := waitStatus(t, s, "acme", sub.ID, StatusFailed)
	if len(d.Attempts) != 0 || len(rcv.requests()) != 0 {
		t.Fatalf("a disabled subscription was sent to: %+v", d)
	}
}

func TestDispatcherRunStopsOnCancel(t *testing.T) {
	s, _ := newTestStore(t)
	d, err := NewDispatcher(s, testConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

func TestDispatcherFailsMalformedTargetWithoutRetrying(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	secret, _ := s.TenantSecret(ctx, "acme", "")
	ev := testEvent("evt_1", "acme", "import.completed")
	ev.TargetURL = "ftp://example.com/hook"
	enqueue(t, s, ev, secret)
	startDispatcher(t, s, testConfig(0, 10*time.Millisecond, 10*time.Millisecond))

	d := waitStatus(t, s, "acme", "", StatusFailed)
	if len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "scheme") {
		t.Fatalf("attempts %+v", d.Attempts)
	}
}
