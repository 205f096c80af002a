package app_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCorrelationIDFollowsAnImport: the caller's X-Request-Id appears in the
// log lines of every stage and on the webhook delivery.
func TestCorrelationIDFollowsAnImport(t *testing.T) {
	var logs lockedBuffer
	hook := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hook <- r.Header.Get("X-Correlation-Id")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	a := startApp(t, app.Config{
		WebhookAllowPrivate: true,
		Logger:              slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	const corr = "req-trace-4242"
	resp, b := post(t, a.URL()+"/v1/imports?webhook_url="+srv.URL, "text/csv", []byte("number\n+3612345678\n+3613456789\n"),
		map[string]string{"X-Request-Id": corr})
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Request-Id") != corr {
		t.Fatalf("upload: %d %s (X-Request-Id %q)", resp.StatusCode, b, resp.Header.Get("X-Request-Id"))
	}
	var acc struct{ ID string }
	_ = json.Unmarshal(b, &acc)
	waitCompleted(t, a.URL(), acc.ID, time.Minute)
	select {
	case got := <-hook:
		if got != corr {
			t.Fatalf("webhook X-Correlation-Id %q, want %q", got, corr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook")
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct {
			Msg           string `json:"msg"`
			Handler       string `json:"handler"`
			CorrelationID string `json:"correlation_id"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.CorrelationID == corr {
			seen[rec.Msg+"/"+rec.Handler] = true
		}
	}
	for _, want := range []string{"http request/", "message handled/split", "message handled/validate",
		"message handled/project", "message handled/aggregate", "message handled/notify"} {
		if !seen[want] {
			t.Errorf("no log line %q carrying the correlation id; saw %v", want, seen)
		}
	}
}
