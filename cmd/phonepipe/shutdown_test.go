package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shutdownBound is how long a SIGTERM'd service may take to exit: the
// message router drains for at most 30s and the HTTP server for 15s, at
// the same time.
const shutdownBound = 45 * time.Second

// terminate sends SIGTERM, as service managers do, and waits up to bound for
// the process to exit. It returns how long that took and the process's exit
// error (nil for exit status 0).
func (c *child) terminate(t *testing.T, bound time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM: %v", err)
	}
	select {
	case <-c.done:
		return time.Since(start), c.waitErr
	case <-time.After(bound):
		t.Fatalf("phonepipe did not exit within %s of SIGTERM", bound)
		return 0, nil
	}
}

// trickle keeps uploading small imports until the server stops answering,
// recording what it accepted: the load that is in flight when SIGTERM comes.
type trickle struct {
	base string
	rows int

	mu       sync.Mutex
	accepted []string
	refused  []string // answers other than 202 (there must be none)
	stopped  chan struct{}
	done     chan struct{}
}

func startTrickle(base string, rows int) *trickle {
	tr := &trickle{base: base, rows: rows, stopped: make(chan struct{}), done: make(chan struct{})}
	go tr.run()
	return tr
}

func (tr *trickle) run() {
	defer close(tr.done)
	body := numbersCSV(tr.rows)
	client := &http.Client{Timeout: time.Minute}
	for i := 0; i < 10_000; i++ {
		select {
		case <-tr.stopped:
			return
		default:
		}
		resp, err := client.Post(tr.base+"/v1/imports", "text/csv", bytes.NewReader(body))
		if err != nil {
			return // the listener is closed: the server is shutting down
		}
		var acc struct{ ID string }
		decodeErr := json.NewDecoder(resp.Body).Decode(&acc)
		_ = resp.Body.Close()
		tr.mu.Lock()
		if resp.StatusCode == http.StatusAccepted && decodeErr == nil {
			tr.accepted = append(tr.accepted, acc.ID)
		} else {
			tr.refused = append(tr.refused, fmt.Sprintf("%d (%v)", resp.StatusCode, decodeErr))
		}
		tr.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// count is how many uploads were accepted so far.
func (tr *trickle) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.accepted)
}

// stop ends the loop and returns what was accepted and refused.
func (tr *trickle) stop() (accepted, refused []string) {
	close(tr.stopped)
	<-tr.done
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.accepted, tr.refused
}

// waitDone polls an import on base until it completes.
func waitDone(t *testing.T, base, id string, total int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := getSummary(t, base, id)
		if s.Status == "completed" {
			if s.Processed != total {
				t.Fatalf("import %s completed with %d of %d processed", id, s.Processed, total)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("import %s not completed after %s: %+v", id, timeout, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGracefulShutdownUnderLoad sends SIGTERM to `phonepipe serve` in the
// middle of a 50,000-row import while more uploads keep arriving. The
// process must exit 0 within shutdownBound with nothing in the poison queue
// (draining is not failing); after a restart every accepted import completes
// with every row exactly once.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	const (
		total      = 50_000
		trickleLen = 200
	)
	first := bin.start(t, dir, "--import-rate", "0")
	id := upload(t, first.url, numbersCSV(total))
	tr := startTrickle(first.url, trickleLen)

	deadline := time.Now().Add(3 * time.Minute)
	for {
		s := getSummary(t, first.url, id)
		if s.Processed > 0 && s.Processed < total && tr.count() >= 3 {
			t.Logf("SIGTERM at %d of %d rows, %d small imports accepted so far", s.Processed, total, tr.count())
			break
		}
		if s.Status == "completed" {
			t.Fatal("import completed before SIGTERM; make it larger")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took, err := first.terminate(t, shutdownBound)
	accepted, refused := tr.stop()
	t.Logf("exited after %s with %v; %d small imports accepted, %d refused", took.Round(time.Millisecond), err, len(accepted), len(refused))
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
	if len(refused) != 0 {
		t.Fatalf("uploads answered with something other than 202 during shutdown: %v", refused)
	}
	stopped := openData(t, dir)
	if n := queryInt(t, stopped, `SELECT COUNT(*) FROM watermill_poison`); n != 0 {
		t.Fatalf("%d messages in the poison queue after a graceful stop, want 0", n)
	}
	if n := queryInt(t, stopped, `SELECT processed FROM imports WHERE id = ?`, id); n >= total {
		t.Fatalf("the import finished (%d rows) before the stop took effect; the test proves nothing", n)
	}

	second := bin.start(t, dir, "--import-rate", "0")
	waitDone(t, second.url, id, total, 5*time.Minute)
	for _, sid := range accepted {
		waitDone(t, second.url, sid, trickleLen, time.Minute)
	}
	second.stop(t)
	db := openData(t, dir)
	checkExactlyOnce(t, db, id, total)
	for _, sid := range accepted {
		checkExactlyOnce(t, db, sid, trickleLen)
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM watermill_poison`); n != 0 {
		t.Fatalf("%d messages in the poison queue after the restart, want 0", n)
	}
}
