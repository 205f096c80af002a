package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/transport/webhooks"
)

// receiver is a webhook endpoint that verifies signatures and records what
// it got, checking at delivery time that the import's results are readable.
type receiver struct {
	t       *testing.T
	secrets []string
	base    string // phonepipe's URL, for the readability check
	mu      sync.Mutex
	got     []delivery
}

type delivery struct {
	webhookID string
	body      map[string]any
	readable  int // result rows readable when the webhook arrived
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	verified := false
	for _, s := range rc.secrets {
		if webhooks.Verify(s, r.Header, body, time.Now(), time.Minute) == nil {
			verified = true
		}
	}
	if !verified {
		rc.t.Errorf("webhook with a bad signature: %s", body)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		rc.t.Errorf("webhook body %q: %v", body, err)
	}
	id, _ := m["data"].(map[string]any)["id"].(string)
	rows := 0
	if resp, err := http.Get(rc.base + "/v1/imports/" + id + "/results"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		rows = strings.Count(string(b), "\n")
	}
	rc.mu.Lock()
	rc.got = append(rc.got, delivery{webhookID: r.Header.Get("webhook-id"), body: m, readable: rows})
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func TestCompletionWebhooksAreSignedAndSentOnce(t *testing.T) {
	tenantSecret, err := webhooks.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, secrets: []string{tenantSecret}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	a := startApp(t, app.Config{WebhookSecret: tenantSecret, WebhookAllowPrivate: true})
	rc.base = a.URL()

	// A subscription with its own secret gets the event too.
	resp, b := post(t, a.URL()+"/v1/webhooks", "application/json",
		[]byte(fmt.Sprintf(`{"url":%q,"event_types":["import.completed"]}`, srv.URL+"/sub")), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create subscription: %d %s", resp.StatusCode, b)
	}
	var sub struct{ ID, Secret string }
	_ = json.Unmarshal(b, &sub)
	if !strings.HasPrefix(sub.Secret, "whsec_") {
		t.Fatalf("subscription secret %q", sub.Secret)
	}
	rc.mu.Lock()
	rc.secrets = append(rc.secrets, sub.Secret)
	rc.mu.Unlock()

	body := csvOf(mixedRows(800, 3))
	resp, b = post(t, a.URL()+"/v1/imports?webhook_url="+srv.URL+"/per-import", "text/csv", body, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	var acc struct{ ID string }
	_ = json.Unmarshal(b, &acc)
	sum := waitCompleted(t, a.URL(), acc.ID, time.Minute)

	deadline := time.Now().Add(30 * time.Second)
	for len(rc.deliveries()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything extra would arrive now
	got := rc.deliveries()
	if len(got) != 2 {
		t.Fatalf("%d webhook deliveries, want 2 (per-import and subscription)", len(got))
	}
	if got[0].webhookID == got[1].webhookID {
		t.Fatal("two targets share a webhook-id")
	}
	for _, d := range got {
		if d.body["type"] != "import.completed" {
			t.Fatalf("webhook type %v", d.body["type"])
		}
		data := d.body["data"].(map[string]any)
		if data["id"] != acc.ID || data["status"] != "completed" || int(data["processed"].(float64)) != sum.Total {
			t.Fatalf("webhook data %v, want the completed import", data)
		}
		if d.readable != sum.Total {
			t.Fatalf("when the webhook arrived %d of %d results were readable", d.readable, sum.Total)
		}
	}
	var ds struct {
		Deliveries []struct {
			Status   string `json:"status"`
			Attempts []struct {
				StatusCode int `json:"status_code"`
			} `json:"attempts"`
		} `json:"deliveries"`
	}
	if code := getJSON(t, a.URL()+"/v1/webhooks/"+sub.ID+"/deliveries", &ds); code != http.StatusOK {
		t.Fatalf("list deliveries: %d", code)
	}
	if len(ds.Deliveries) != 1 || ds.Deliveries[0].Status != "succeeded" || len(ds.Deliveries[0].Attempts) != 1 ||
		ds.Deliveries[0].Attempts[0].StatusCode != http.StatusNoContent {
		t.Fatalf("deliveries %+v", ds)
	}
}

// progressMsg is one live-progress message.
type progressMsg struct {
	Type   string        `json:"type"`
	Seq    int64         `json:"seq"`
	Import importSummary `json:"import"`
}

func dialProgress(t *testing.T, base, id string, since int64) *websocket.Conn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/v1/imports/" + id + "/progress"
	if since > 0 {
		url += fmt.Sprintf("?since=%d", since)
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (%d)", url, err, code)
	}
	return c
}

// watch reads messages until completed (or stop returns true), checking the
// protocol's rules, and returns them.
func watch(t *testing.T, c *websocket.Conn, since int64, stop func([]progressMsg) bool) []progressMsg {
	t.Helper()
	var msgs []progressMsg
	last := since
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		var m progressMsg
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("read progress after %d messages: %v", len(msgs), err)
		}
		if len(msgs) == 0 && m.Type != "snapshot" {
			t.Fatalf("first message is %q, want snapshot", m.Type)
		}
		if len(msgs) > 0 && m.Type == "snapshot" {
			t.Fatal("a second snapshot on one connection")
		}
		if m.Type == "progress" && m.Seq <= last {
			t.Fatalf("progress seq %d after %d", m.Seq, last)
		}
		last = max(last, m.Seq)
		msgs = append(msgs, m)
		if m.Type == "completed" {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("after completed: %v, want a normal close", err)
			}
			return msgs
		}
		if stop != nil && stop(msgs) {
			return msgs
		}
	}
}

func TestLiveProgressAndResume(t *testing.T) {
	a := startApp(t, app.Config{JobSize: 200})
	var b strings.Builder
	b.WriteString("number\n")
	for i := range 20_000 {
		fmt.Fprintf(&b, "+3630%07d\n", i)
	}
	id := mustAccept(t, a.URL(), []byte(b.String()))
	steady := dialProgress(t, a.URL(), id, 0)
	defer steady.Close()
	flaky := dialProgress(t, a.URL(), id, 0)

	var steadyMsgs []progressMsg
	done := make(chan struct{})
	go func() {
		defer close(done)
		steadyMsgs = watch(t, steady, 0, nil)
	}()
	// The flaky client drops after its first progress message and resumes.
	first := watch(t, flaky, 0, func(ms []progressMsg) bool { return len(ms) >= 2 })
	flaky.Close()
	lastSeq := first[len(first)-1].Seq
	resumed := dialProgress(t, a.URL(), id, lastSeq)
	defer resumed.Close()
	rest := watch(t, resumed, lastSeq, nil)
	<-done

	completed := func(ms []progressMsg) []progressMsg {
		var out []progressMsg
		for _, m := range ms {
			if m.Type == "completed" {
				out = append(out, m)
			}
		}
		return out
	}
	sc, rc := completed(steadyMsgs), completed(append(first, rest...))
	if len(sc) != 1 || len(rc) != 1 {
		t.Fatalf("completed messages: steady %d, resumed %d; want exactly 1 each", len(sc), len(rc))
	}
	sum := waitCompleted(t, a.URL(), id, time.Second)
	for _, m := range []progressMsg{sc[0], rc[0]} {
		if m.Import.Status != "completed" || m.Import.Processed != sum.Processed || m.Import.Valid != sum.Valid {
			t.Fatalf("final state %+v, want %+v", m.Import, sum)
		}
	}
	progress := 0
	for _, m := range steadyMsgs {
		if m.Type == "progress" {
			progress++
		}
	}
	if progress == 0 {
		t.Fatal("the steady client saw no progress message before completion")
	}
	t.Logf("steady client: %d messages (%d progress) for 100 jobs", len(steadyMsgs), progress)
	// A client arriving after completion gets a snapshot and one completed.
	late := dialProgress(t, a.URL(), id, 0)
	defer late.Close()
	if ms := watch(t, late, 0, nil); len(completed(ms)) != 1 {
		t.Fatalf("late client got %+v", ms)
	}
}
