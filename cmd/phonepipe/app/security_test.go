package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// Security tests: authentication and tenant isolation on every route, the
// WebSocket handshake's checks, the SSRF guard of webhook delivery and the
// per-tenant rate limit, all through the real HTTP API of a running app.

// secReq is one HTTP request to the API.
type secReq struct {
	method, path, contentType, body string
}

// secResp is what the API answered.
type secResp struct {
	status int
	header http.Header
	body   []byte
}

// errorCode is the "code" of a contract error body, "" if the body is not one.
func (a secResp) errorCode() string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(a.body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	return e.Error.Code
}

// secSend makes c with the Authorization header auth ("" = none).
func secSend(t *testing.T, base, auth string, c secReq) secResp {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", c.method, c.path, err)
	}
	return secResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// secBearer is the Authorization header value for key.
func secBearer(key string) string { return "Bearer " + key }

// secSendOK makes c as key and fails unless the status is want; it decodes the
// JSON answer into v when v is not nil.
func secSendOK(t *testing.T, base, key string, c secReq, want int, v any) secResp {
	t.Helper()
	a := secSend(t, base, secBearer(key), c)
	if a.status != want {
		t.Fatalf("%s %s as %s: %d, want %d: %s", c.method, c.path, key, a.status, want, a.body)
	}
	if v != nil {
		if err := json.Unmarshal(a.body, v); err != nil {
			t.Fatalf("%s %s: decode %s: %v", c.method, c.path, a.body, err)
		}
	}
	return a
}

// secWaitCompleted polls an import with key until it completes.
func secWaitCompleted(t *testing.T, base, key, id string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var s importSummary
		secSendOK(t, base, key, secReq{method: http.MethodGet, path: "/v1/imports/" + id}, http.StatusOK, &s)
		if s.Status == "completed" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("import %s not completed after %s: %+v", id, timeout, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// secDeliveries is GET /v1/webhooks/{id}/deliveries.
type secDeliveries struct {
	Deliveries []struct {
		ID       string `json:"id"`
		URL      string `json:"url"`
		Status   string `json:"status"`
		Attempts []struct {
			StatusCode int    `json:"status_code"`
			Error      string `json:"error"`
		} `json:"attempts"`
	} `json:"deliveries"`
}

// secWaitAttempted waits until every delivery of subscription sub has at least
// one attempt and there are want of them.
func secWaitAttempted(t *testing.T, base, key, sub string, want int, timeout time.Duration) secDeliveries {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ds secDeliveries
		secSendOK(t, base, key, secReq{method: http.MethodGet, path: "/v1/webhooks/" + sub + "/deliveries"}, http.StatusOK, &ds)
		attempted := 0
		for _, d := range ds.Deliveries {
			if len(d.Attempts) > 0 {
				attempted++
			}
		}
		if len(ds.Deliveries) == want && attempted == want {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s after %s: %+v, want %d attempted", sub, timeout, ds, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// secHits is a webhook target that counts the requests it gets.
type secHits struct{ n atomic.Int64 }

func (h *secHits) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h.n.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// secCreateWebhook subscribes key's tenant to import.completed at target.
func secCreateWebhook(t *testing.T, base, key, target string) string {
	t.Helper()
	var sub struct{ ID string }
	secSendOK(t, base, key, secReq{method: http.MethodPost, path: "/v1/webhooks", contentType: "application/json",
		body: fmt.Sprintf(`{"url":%q,"event_types":["import.completed"]}`, target)}, http.StatusCreated, &sub)
	return sub.ID
}

// secAccept uploads a CSV as key and returns the import id.
func secAccept(t *testing.T, base, key, csvBody string) string {
	t.Helper()
	var acc struct{ ID string }
	secSendOK(t, base, key, secReq{method: http.MethodPost, path: "/v1/imports", contentType: "text/csv", body: csvBody},
		http.StatusAccepted, &acc)
	return acc.ID
}

// secWSURL turns an http base URL and path into a ws URL.
func secWSURL(base, path string) string { return "ws" + strings.TrimPrefix(base, "http") + path }

// secDialWS opens a WebSocket with header and returns the connection (nil when
// refused) and the handshake's HTTP status.
func secDialWS(t *testing.T, target string, header http.Header) (*websocket.Conn, int) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(target, header)
	status := 0
	if resp != nil {
		status = resp.StatusCode
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
	}
	if err != nil {
		if resp == nil {
			t.Fatalf("dial %s: %v", target, err)
		}
		return nil, status
	}
	return c, status
}

// secReadFirst reads the first message of a progress socket.
func secReadFirst(t *testing.T, c *websocket.Conn) progressMsg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var m progressMsg
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read first progress message: %v", err)
	}
	return m
}

// TestAuthAndTenantIsolation runs every route without a key, with wrong keys,
// as tenant B on tenant A's resources (they must not exist: 404, not 403)
// and, as the control, as tenant A.
func TestAuthAndTenantIsolation(t *testing.T) {
	target := &secHits{}
	srv := httptest.NewServer(target)
	defer srv.Close()
	a := startApp(t, app.Config{APIKeys: "a:key-a,b:key-b"})
	base := a.URL()

	subA := secCreateWebhook(t, base, "key-a", srv.URL+"/a")
	subB := secCreateWebhook(t, base, "key-b", srv.URL+"/b")
	const number = "+3612345678"
	id := secAccept(t, base, "key-a", "number\n"+number+"\n+36301234567\n")
	secWaitCompleted(t, base, "key-a", id, time.Minute)
	delivery := secWaitAttempted(t, base, "key-a", subA, 1, 30*time.Second).Deliveries[0].ID

	const (
		ownedByA = true  // B must get 404
		anyones  = false // B gets its own answer
	)
	routes := []struct {
		name   string
		call   secReq
		owned  bool
		wantA  int
		isLast bool // changes state: run A's control last
	}{
		{"create import", secReq{http.MethodPost, "/v1/imports", "text/csv", "number\n+3612345679\n"}, anyones, http.StatusAccepted, false},
		{"get import", secReq{http.MethodGet, "/v1/imports/" + id, "", ""}, ownedByA, http.StatusOK, false},
		{"results", secReq{http.MethodGet, "/v1/imports/" + id + "/results", "", ""}, ownedByA, http.StatusOK, false},
		{"results as csv", secReq{http.MethodGet, "/v1/imports/" + id + "/results?format=csv", "", ""}, ownedByA, http.StatusOK, false},
		{"number", secReq{http.MethodGet, "/v1/numbers/" + number, "", ""}, ownedByA, http.StatusOK, false},
		{"number url-encoded", secReq{http.MethodGet, "/v1/numbers/" + url.PathEscape(number), "", ""}, ownedByA, http.StatusOK, false},
		{"number events", secReq{http.MethodGet, "/v1/numbers/" + number + "/events", "", ""}, ownedByA, http.StatusOK, false},
		{"list webhooks", secReq{http.MethodGet, "/v1/webhooks", "", ""}, anyones, http.StatusOK, false},
		{"create webhook", secReq{http.MethodPost, "/v1/webhooks", "application/json", `{"url":"` + srv.URL + `/c"}`}, anyones, http.StatusCreated, false},
		{"deliveries", secReq{http.MethodGet, "/v1/webhooks/" + subA + "/deliveries", "", ""}, ownedByA, http.StatusOK, false},
		{"resend", secReq{http.MethodPost, "/v1/webhooks/" + subA + "/deliveries/" + delivery + "/resend", "", ""}, ownedByA, http.StatusAccepted, false},
		{"delete webhook", secReq{http.MethodDelete, "/v1/webhooks/" + subA, "", ""}, ownedByA, http.StatusNoContent, true},
	}
	progress := "/v1/imports/" + id + "/progress"

	t.Run("unauthenticated is 401", func(t *testing.T) {
		auths := []struct{ name, header string }{
			{"no key", ""},
			{"unknown key", secBearer("key-c")},
			{"prefix of a key", secBearer("key-")},
			{"key with a suffix", secBearer("key-aa")},
			{"key in another case", secBearer("KEY-A")},
			{"empty secBearer", "Bearer "},
			{"basic scheme with the key", "Basic a2V5LWE="},
			{"key without scheme", "key-a"},
		}
		for _, r := range routes {
			for _, au := range auths {
				ans := secSend(t, base, au.header, r.call)
				if ans.status != http.StatusUnauthorized || ans.errorCode() != "unauthorized" ||
					!strings.HasPrefix(ans.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s, %s: %d %q (WWW-Authenticate %q), want 401 unauthorized",
						r.name, au.name, ans.status, ans.body, ans.header.Get("WWW-Authenticate"))
				}
			}
		}
		// ?token= is for WebSocket upgrades only: a key in a URL of a plain
		// request would end up in logs and browser history.
		for _, r := range routes {
			if r.call.method != http.MethodGet {
				continue
			}
			c := r.call
			c.path += map[bool]string{true: "&", false: "?"}[strings.Contains(c.path, "?")] + "token=key-a"
			if ans := secSend(t, base, "", c); ans.status != http.StatusUnauthorized {
				t.Errorf("%s with ?token= and no upgrade: %d, want 401", r.name, ans.status)
			}
		}
	})

	t.Run("progress websocket auth", func(t *testing.T) {
		hdr := func(kv ...string) http.Header {
			h := http.Header{}
			for i := 0; i+1 < len(kv); i += 2 {
				h.Set(kv[i], kv[i+1])
			}
			return h
		}
		cases := []struct {
			name   string
			query  string
			header http.Header
			want   int
		}{
			{"no key", "", nil, http.StatusUnauthorized},
			{"unknown secBearer", "", hdr("Authorization", secBearer("key-c")), http.StatusUnauthorized},
			{"unknown token", "?token=key-c", nil, http.StatusUnauthorized},
			{"empty token", "?token=", nil, http.StatusUnauthorized},
			{"wrong secBearer wins over a right token", "?token=key-a", hdr("Authorization", secBearer("key-c")), http.StatusUnauthorized},
			{"tenant B by secBearer", "", hdr("Authorization", secBearer("key-b")), http.StatusNotFound},
			{"tenant B by token", "?token=key-b", nil, http.StatusNotFound},
			{"tenant B resuming", "?token=key-b&since=3", nil, http.StatusNotFound},
			{"tenant A from a foreign page", "?token=key-a", hdr("Origin", "https://evil.example"), http.StatusForbidden},
			{"tenant A by secBearer", "", hdr("Authorization", secBearer("key-a")), http.StatusSwitchingProtocols},
			{"tenant A by token", "?token=key-a", nil, http.StatusSwitchingProtocols},
		}
		for _, tc := range cases {
			c, status := secDialWS(t, secWSURL(base, progress+tc.query), tc.header)
			if status != tc.want {
				t.Errorf("%s: handshake %d, want %d", tc.name, status, tc.want)
			}
			if c == nil {
				continue
			}
			if m := secReadFirst(t, c); m.Type != "snapshot" || m.Import.ID != id {
				t.Errorf("%s: first message %+v, want the snapshot of %s", tc.name, m, id)
			}
			_ = c.Close()
		}
	})

	t.Run("tenant B cannot see A's resources", func(t *testing.T) {
		for _, r := range routes {
			if !r.owned {
				continue
			}
			ans := secSend(t, base, secBearer("key-b"), r.call)
			if ans.status != http.StatusNotFound || ans.errorCode() != "not_found" {
				t.Errorf("%s as B: %d %s, want 404 not_found", r.name, ans.status, ans.body)
			}
		}
		// B's own subscription with A's delivery id is no way in either.
		ans := secSend(t, base, secBearer("key-b"), secReq{method: http.MethodPost,
			path: "/v1/webhooks/" + subB + "/deliveries/" + delivery + "/resend"})
		if ans.status != http.StatusNotFound {
			t.Errorf("resend of A's delivery through B's subscription: %d, want 404", ans.status)
		}
		var list struct {
			Webhooks []struct{ ID string } `json:"webhooks"`
		}
		secSendOK(t, base, "key-b", secReq{method: http.MethodGet, path: "/v1/webhooks"}, http.StatusOK, &list)
		for _, w := range list.Webhooks {
			if w.ID == subA {
				t.Errorf("B's webhook list shows A's subscription %s", subA)
			}
		}
		var ds secDeliveries
		secSendOK(t, base, "key-b", secReq{method: http.MethodGet, path: "/v1/webhooks/" + subB + "/deliveries"}, http.StatusOK, &ds)
		if len(ds.Deliveries) != 0 {
			t.Errorf("B's subscription has deliveries of A's import: %+v", ds)
		}
	})

	t.Run("tenant A reaches its own resources", func(t *testing.T) {
		for _, last := range []bool{false, true} {
			for _, r := range routes {
				if r.isLast != last {
					continue
				}
				if ans := secSend(t, base, secBearer("key-a"), r.call); ans.status != r.wantA {
					t.Errorf("%s as A: %d, want %d: %s", r.name, ans.status, r.wantA, ans.body)
				}
			}
		}
		ans := secSend(t, base, secBearer("key-a"), secReq{method: http.MethodGet, path: "/v1/webhooks/" + subA + "/deliveries"})
		if ans.status != http.StatusNotFound {
			t.Errorf("deliveries of a deleted subscription: %d, want 404", ans.status)
		}
	})

	if n := target.n.Load(); n != 0 {
		t.Errorf("the loopback webhook target got %d requests; the SSRF guard must refuse it", n)
	}
}

// TestWebSocketHandshakeAndFrameLimits: cross-origin handshakes are refused
// unless the origin is allowed, and an oversize client frame closes the
// socket with 1009. Only the api role runs, so the import stays open and
// the socket stays up.
func TestWebSocketHandshakeAndFrameLimits(t *testing.T) {
	a := startApp(t, app.Config{APIKeys: "a:key-a", Roles: []string{app.RoleAPI},
		AllowedOrigins: []string{"https://app.example"}})
	base := a.URL()
	id := secAccept(t, base, "key-a", "number\n+3612345678\n")
	target := secWSURL(base, "/v1/imports/"+id+"/progress?token=key-a")
	host := strings.TrimPrefix(base, "http://")
	cases := []struct {
		origin string
		want   int
	}{
		{"", http.StatusSwitchingProtocols}, // not a browser
		{"https://app.example", http.StatusSwitchingProtocols},
		{"https://APP.example", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols}, // same origin
		{"https://evil.example", http.StatusForbidden},
		{"https://app.example.evil.example", http.StatusForbidden},
		{"http://app.example", http.StatusForbidden}, // scheme matters
		{"null", http.StatusForbidden},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, status := secDialWS(t, target, h)
		if status != tc.want {
			t.Errorf("Origin %q: handshake %d, want %d", tc.origin, status, tc.want)
		}
		if c != nil {
			_ = c.Close()
		}
	}

	tests := []struct {
		name      string
		size      int
		wantClose int // 0: the socket stays open
	}{
		{"small frame is read and ignored", 100, 0},
		{"frame at the limit", 4096, 0},
		{"oversize frame", 4097, websocket.CloseMessageTooBig},
		{"huge frame", 256 << 10, websocket.CloseMessageTooBig},
	}
	// The client's write buffer holds the largest message, so each message
	// goes out as one frame.
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, WriteBufferSize: 512 << 10}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := dialer.Dial(target, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			_ = resp.Body.Close()
			defer c.Close()
			if m := secReadFirst(t, c); m.Type != "snapshot" {
				t.Fatalf("first message %+v", m)
			}
			if err := c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), tc.size)); err != nil {
				t.Fatalf("write: %v", err)
			}
			wait := time.Second
			if tc.wantClose != 0 {
				wait = 30 * time.Second
			}
			_ = c.SetReadDeadline(time.Now().Add(wait))
			_, _, err = c.ReadMessage()
			switch {
			case tc.wantClose == 0:
				// Nothing more is sent for an import nobody works on; the
				// read must time out rather than see a close.
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("after a %d-byte frame: %v, want the socket to stay open", tc.size, err)
				}
			case !websocket.IsCloseError(err, tc.wantClose):
				t.Fatalf("after a %d-byte frame: %v, want close %d", tc.size, err, tc.wantClose)
			}
		})
	}
}

// TestWebhookSSRFGuard: with the default settings a webhook aimed at
// loopback or another private address is refused when the dispatcher dials
// (the attempt records why) and no request reaches the target; with
// WebhookAllowPrivate it is delivered.
func TestWebhookSSRFGuard(t *testing.T) {
	hits := &secHits{}
	srv := httptest.NewServer(hits)
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	t.Run("private targets are refused at dial time", func(t *testing.T) {
		a := startApp(t, app.Config{APIKeys: "a:key-a"})
		base := a.URL()
		// Spellings of this machine: loopback by name, address, IPv6,
		// IPv4-mapped IPv6 and the unspecified address (which connects
		// locally). Other private ranges are covered by the unit tests of
		// transport/webhooks; a test here must never send traffic to them
		// should the guard fail.
		targets := []string{
			"http://127.0.0.1:" + port + "/hook",
			"http://localhost:" + port + "/hook",
			"http://127.0.0.2:" + port + "/hook",
			"http://[::ffff:127.0.0.1]:" + port + "/hook",
			"http://[::1]:" + port + "/hook",
			"http://0.0.0.0:" + port + "/hook",
		}
		subs := make([]string, len(targets))
		for i, target := range targets {
			subs[i] = secCreateWebhook(t, base, "key-a", target)
		}
		id := secAccept(t, base, "key-a", "number\n+3612345678\n")
		secWaitCompleted(t, base, "key-a", id, time.Minute)
		for i, sub := range subs {
			ds := secWaitAttempted(t, base, "key-a", sub, 1, 30*time.Second)
			at := ds.Deliveries[0].Attempts[0]
			if at.StatusCode != 0 || !strings.Contains(at.Error, "blocked") {
				t.Errorf("%s: attempt %+v, want no response and a blocked-address error", targets[i], at)
			}
			if ds.Deliveries[0].Status == "succeeded" {
				t.Errorf("%s: delivery %+v succeeded", targets[i], ds.Deliveries[0])
			}
		}
		if n := hits.n.Load(); n != 0 {
			t.Fatalf("the loopback target got %d requests", n)
		}
	})

	t.Run("allowed with WebhookAllowPrivate", func(t *testing.T) {
		a := startApp(t, app.Config{APIKeys: "a:key-a", WebhookAllowPrivate: true})
		base := a.URL()
		sub := secCreateWebhook(t, base, "key-a", "http://127.0.0.1:"+port+"/hook")
		id := secAccept(t, base, "key-a", "number\n+3612345678\n")
		secWaitCompleted(t, base, "key-a", id, time.Minute)
		ds := secWaitAttempted(t, base, "key-a", sub, 1, 30*time.Second)
		if d := ds.Deliveries[0]; d.Status != "succeeded" || d.Attempts[0].StatusCode != http.StatusNoContent {
			t.Fatalf("delivery %+v, want succeeded with 204", d)
		}
		if n := hits.n.Load(); n != 1 {
			t.Fatalf("the target got %d requests, want 1", n)
		}
	})
}

// TestImportRateLimitPerTenant: past its burst a tenant gets 429 with
// Retry-After and the error shape; the other tenant is not affected; after
// Retry-After seconds the tenant may import again.
func TestImportRateLimitPerTenant(t *testing.T) {
	a := startApp(t, app.Config{APIKeys: "a:key-a,b:key-b", Roles: []string{app.RoleAPI}, ImportRate: 0.5, ImportBurst: 3})
	base := a.URL()
	upload := secReq{method: http.MethodPost, path: "/v1/imports", contentType: "text/csv", body: "number\n+3612345678\n"}
	for i := range 3 {
		if ans := secSend(t, base, secBearer("key-a"), upload); ans.status != http.StatusAccepted {
			t.Fatalf("A's upload %d within the burst: %d %s", i+1, ans.status, ans.body)
		}
	}
	limited := secSend(t, base, secBearer("key-a"), upload)
	if limited.status != http.StatusTooManyRequests || limited.errorCode() != "rate_limited" {
		t.Fatalf("A's upload past the burst: %d %s, want 429 rate_limited", limited.status, limited.body)
	}
	secs, err := strconv.Atoi(limited.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2 (a token every 2 s)", limited.header.Get("Retry-After"))
	}
	for i := range 3 {
		if ans := secSend(t, base, secBearer("key-b"), upload); ans.status != http.StatusAccepted {
			t.Fatalf("B's upload %d while A is limited: %d %s", i+1, ans.status, ans.body)
		}
	}
	// Unauthenticated floods are 401 and spend nobody's tokens.
	for range 10 {
		if ans := secSend(t, base, "", upload); ans.status != http.StatusUnauthorized {
			t.Fatalf("no key: %d", ans.status)
		}
	}
	time.Sleep(time.Duration(secs) * time.Second)
	if ans := secSend(t, base, secBearer("key-a"), upload); ans.status != http.StatusAccepted {
		t.Fatalf("A after Retry-After: %d %s", ans.status, ans.body)
	}
	// Reading is never limited.
	for range 30 {
		if ans := secSend(t, base, secBearer("key-a"), secReq{method: http.MethodGet, path: "/v1/webhooks"}); ans.status != http.StatusOK {
			t.Fatalf("GET while limited: %d", ans.status)
		}
	}
}
