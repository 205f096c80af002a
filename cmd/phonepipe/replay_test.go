package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// runPhonepipe runs the binary to completion and returns its stdout.
func (b binary) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(b.path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("phonepipe %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// uploadWithWebhook starts an import whose completion is sent to hook.
func uploadWithWebhook(t *testing.T, base, hook string, body []byte) string {
	t.Helper()
	resp, err := http.Post(base+"/v1/imports?webhook_url="+url.QueryEscape(hook), "text/csv", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acc struct{ ID string }
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&acc); err != nil {
		t.Fatal(err)
	}
	return acc.ID
}

func waitSummary(t *testing.T, base, id string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for getSummary(t, base, id).Status != "completed" {
		if time.Now().After(deadline) {
			t.Fatalf("import %s not completed after %s", id, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getBody(base, path string) (int, []byte, error) {
	resp, err := http.Get(base + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestReplayWhileServing runs `phonepipe replay --all` as a process while
// `phonepipe serve` serves the same data dir: reads keep answering through
// the replay with the same answers, the checksums before and after are
// identical, and the replay sends nothing — no webhook to a receiver that
// has a subscription and per-import URLs, no message to a connected
// WebSocket client.
func TestReplayWhileServing(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	var hooks atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	private := []string{"--webhook-allow-private", "--import-rate", "0"}

	// History: two imports, each announced to a subscription and to its
	// own webhook URL.
	c := bin.start(t, dir, private...)
	sub, err := http.Post(c.url+"/v1/webhooks", "application/json",
		strings.NewReader(`{"url":"`+receiver.URL+`/sub","event_types":["import.completed"]}`))
	if err != nil || sub.StatusCode != http.StatusCreated && sub.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %v %v", err, sub)
	}
	sub.Body.Close()
	ids := []string{uploadWithWebhook(t, c.url, receiver.URL+"/a", numbersCSV(6000)),
		uploadWithWebhook(t, c.url, receiver.URL+"/b", numbersCSV(3000))}
	for _, id := range ids {
		waitSummary(t, c.url, id, 3*time.Minute)
	}
	deadline := time.Now().Add(time.Minute)
	for hooks.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d webhooks delivered, want 4", hooks.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.stop(t)

	// A server without the split role, so that a new import stays open
	// and its WebSocket client stays connected through the replay.
	c = bin.start(t, dir, append(private, "--roles", "api,validate,project,aggregate,notify")...)
	open := upload(t, c.url, numbersCSV(10))
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(c.url, "http")+"/v1/imports/"+open+"/progress", nil)
	if err != nil {
		t.Fatalf("dial progress: %v", err)
	}
	defer ws.Close()
	var snap struct{ Type string }
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&snap); err != nil || snap.Type != "snapshot" {
		t.Fatalf("first message %+v, %v; want a snapshot", snap, err)
	}
	wsMessages := make(chan string, 16)
	go func() {
		_ = ws.SetReadDeadline(time.Time{})
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				close(wsMessages)
				return
			}
			wsMessages <- string(m)
		}
	}()
	hooksBefore := hooks.Load()

	paths := []string{"/v1/imports/" + ids[0] + "/results", "/v1/imports/" + ids[1] + "/results?format=csv",
		"/v1/imports/" + ids[0], "/v1/numbers/%2B36300000000", "/v1/numbers/%2B36300000000/events", "/v1/stats/carriers"}
	want := map[string][]byte{}
	for _, p := range paths {
		code, body, err := getBody(c.url, p)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", p, code, err)
		}
		want[p] = body
	}
	before := bin.run(t, "projections", "checksum", "--data-dir", dir)

	// Read continuously while the replay runs.
	ctx, stopReads := context.WithCancel(context.Background())
	var (
		wg                    sync.WaitGroup
		reads, failed, differ atomic.Int64
		replaying             atomic.Bool
		readsDuring           atomic.Int64
	)
	for _, p := range paths {
		wg.Go(func() {
			for ctx.Err() == nil {
				during := replaying.Load()
				code, body, err := getBody(c.url, p)
				reads.Add(1)
				switch {
				case err != nil || code != http.StatusOK:
					failed.Add(1)
					t.Errorf("GET %s during the replay: %d %v", p, code, err)
				case !bytes.Equal(body, want[p]):
					differ.Add(1)
					t.Errorf("GET %s during the replay answered differently", p)
				case during && replaying.Load():
					readsDuring.Add(1)
				}
			}
		})
	}
	replaying.Store(true)
	out := bin.run(t, "replay", "--all", "--data-dir", dir)
	replaying.Store(false)
	time.Sleep(200 * time.Millisecond) // reads after the swap
	stopReads()
	wg.Wait()
	t.Logf("replay: %s; %d reads, %d during the replay", strings.TrimSpace(out), reads.Load(), readsDuring.Load())
	if !strings.Contains(out, "replayed numbers, results, stats") {
		t.Fatalf("replay printed %q", out)
	}
	if readsDuring.Load() == 0 || failed.Load() > 0 || differ.Load() > 0 {
		t.Fatalf("%d reads during the replay, %d failed, %d differed", readsDuring.Load(), failed.Load(), differ.Load())
	}
	if after := bin.run(t, "projections", "checksum", "--data-dir", dir); after != before {
		t.Fatalf("checksums changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	for _, p := range paths {
		if _, body, _ := getBody(c.url, p); !bytes.Equal(body, want[p]) {
			t.Errorf("GET %s differs after the swap", p)
		}
	}

	// Nothing was sent: give a dispatcher and the live feed time to act.
	time.Sleep(2 * time.Second)
	if n := hooks.Load() - hooksBefore; n != 0 {
		t.Errorf("%d webhook requests during the replay", n)
	}
	select {
	case m, ok := <-wsMessages:
		if ok {
			t.Errorf("WebSocket message during the replay: %s", m)
		} else {
			t.Error("WebSocket closed during the replay")
		}
	default:
	}
	c.stop(t)
}
