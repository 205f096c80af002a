package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for the rate limiter.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// limitedHandler is POST /v1/imports as New wires it (authenticate, then the
// rate limit) around a handler that only counts the requests it gets.
func limitedHandler(lim RateLimit, keys []APIKey, clock *fakeClock, served *atomic.Int64) http.Handler {
	s := &Server{
		cfg:    Config{ImportRate: lim, APIKeys: keys, Now: clock.Now, Logger: slog.New(slog.DiscardHandler)},
		logger: slog.New(slog.DiscardHandler),
	}
	return s.authenticate(s.limitImports(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
}

// postAs sends one POST /v1/imports with key ("" = no Authorization).
func postAs(h http.Handler, key string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/imports", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// step is one request of a rate-limit scenario.
type step struct {
	advance    time.Duration // clock moves this much before the request
	key        string
	status     int
	retryAfter int // expected Retry-After seconds on a 429
}

func TestImportRateLimit(t *testing.T) {
	twoTenants := []APIKey{{Tenant: "a", Key: "key-a"}, {Tenant: "b", Key: "key-b"}, {Tenant: "a", Key: "key-a2"}}
	repeat := func(n int, s step) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	concat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	ok := http.StatusAccepted
	tests := []struct {
		name  string
		limit RateLimit
		keys  []APIKey
		steps []step
	}{
		{
			name:  "disabled when the rate is zero",
			limit: RateLimit{PerSecond: 0, Burst: 1},
			steps: repeat(100, step{status: ok}),
		},
		{
			name:  "burst then 429 until a token refills",
			limit: RateLimit{PerSecond: 1, Burst: 3},
			steps: concat(repeat(3, step{status: ok}),
				[]step{{status: http.StatusTooManyRequests, retryAfter: 1}},
				[]step{{advance: 999 * time.Millisecond, status: http.StatusTooManyRequests, retryAfter: 1}},
				[]step{{advance: time.Millisecond, status: ok}},
				[]step{{status: http.StatusTooManyRequests, retryAfter: 1}},
				// A long pause refills the bucket only up to the burst.
				[]step{{advance: time.Hour, status: ok}}, repeat(2, step{status: ok}),
				[]step{{status: http.StatusTooManyRequests, retryAfter: 1}}),
		},
		{
			name:  "Retry-After is rounded up to whole seconds",
			limit: RateLimit{PerSecond: 0.1, Burst: 1},
			steps: []step{{status: ok}, {status: http.StatusTooManyRequests, retryAfter: 10},
				{advance: 7500 * time.Millisecond, status: http.StatusTooManyRequests, retryAfter: 3},
				{advance: 2500 * time.Millisecond, status: ok}},
		},
		{
			name:  "a burst below one means one",
			limit: RateLimit{PerSecond: 2, Burst: 0},
			steps: []step{{status: ok}, {status: http.StatusTooManyRequests, retryAfter: 1},
				{advance: 500 * time.Millisecond, status: ok}},
		},
		{
			name:  "tenants have separate buckets; keys of one tenant share one",
			limit: RateLimit{PerSecond: 1, Burst: 2},
			keys:  twoTenants,
			steps: []step{
				{key: "key-a", status: ok}, {key: "key-a2", status: ok},
				{key: "key-a", status: http.StatusTooManyRequests, retryAfter: 1},
				{key: "key-a2", status: http.StatusTooManyRequests, retryAfter: 1},
				{key: "key-b", status: ok}, {key: "key-b", status: ok},
				{key: "key-b", status: http.StatusTooManyRequests, retryAfter: 1},
			},
		},
		{
			name:  "unauthenticated requests spend no tokens",
			limit: RateLimit{PerSecond: 1, Burst: 2},
			keys:  twoTenants,
			steps: concat(repeat(20, step{key: "", status: http.StatusUnauthorized}),
				repeat(20, step{key: "wrong", status: http.StatusUnauthorized}),
				repeat(2, step{key: "key-a", status: ok}),
				[]step{{key: "key-a", status: http.StatusTooManyRequests, retryAfter: 1}}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			var served atomic.Int64
			h := limitedHandler(tc.limit, tc.keys, clock, &served)
			wantServed := int64(0)
			for i, st := range tc.steps {
				clock.advance(st.advance)
				rec := postAs(h, st.key)
				if rec.Code != st.status {
					t.Fatalf("request %d: status %d, want %d (%s)", i+1, rec.Code, st.status, rec.Body)
				}
				if st.status == ok {
					wantServed++
				}
				if st.status != http.StatusTooManyRequests {
					continue
				}
				if got := rec.Header().Get("Retry-After"); got != strconv.Itoa(st.retryAfter) {
					t.Fatalf("request %d: Retry-After %q, want %d", i+1, got, st.retryAfter)
				}
				var body struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != "rate_limited" || body.Error.Message == "" {
					t.Fatalf("request %d: 429 body %q is not the error shape with code rate_limited (%v)", i+1, rec.Body, err)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Fatalf("request %d: Content-Type %q", i+1, ct)
				}
			}
			if served.Load() != wantServed {
				t.Fatalf("the handler ran %d times, want %d", served.Load(), wantServed)
			}
		})
	}
}

// TestImportRateLimitConcurrent: with the clock stopped, exactly Burst of
// many concurrent requests get through (run it with -race).
func TestImportRateLimitConcurrent(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	var served atomic.Int64
	keys := []APIKey{{Tenant: "a", Key: "key-a"}, {Tenant: "b", Key: "key-b"}}
	h := limitedHandler(RateLimit{PerSecond: 5, Burst: 7}, keys, clock, &served)
	var wg sync.WaitGroup
	var limited atomic.Int64
	for i := range 64 {
		wg.Go(func() {
			key := "key-a"
			if i%2 == 1 {
				key = "key-b"
			}
			if postAs(h, key).Code == http.StatusTooManyRequests {
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	if served.Load() != 14 || limited.Load() != 50 {
		t.Fatalf("%d served and %d limited, want 14 (7 per tenant) and 50", served.Load(), limited.Load())
	}
}

// TestTenantLimitersAreBounded: the buckets are made up front, one per
// tenant; requests in the name of other tenants share one extra bucket and
// add nothing.
func TestTenantLimitersAreBounded(t *testing.T) {
	tests := []struct {
		name string
		keys []APIKey
		want int
	}{
		{"auth off: the default tenant", nil, 1},
		{"one bucket per tenant, not per key", []APIKey{{"a", "1"}, {"a", "2"}, {"b", "3"}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTenantLimiters(RateLimit{PerSecond: 1, Burst: 1}, tc.keys)
			now := time.Now()
			for i := range 10_000 {
				tl.take(fmt.Sprintf("invented-%d", i), now)
			}
			if len(tl.byTenant) != tc.want {
				t.Fatalf("%d buckets, want %d", len(tl.byTenant), tc.want)
			}
		})
	}
}
