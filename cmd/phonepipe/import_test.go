package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// startInProcess runs a phonepipe service in this process on a fresh data
// directory and stops it when the test ends.
func startInProcess(t *testing.T) *app.App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Config{
		DataDir: t.TempDir(),
		Addr:    "127.0.0.1:0",
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		cancel()
		t.Fatalf("start app: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("app stopped with error: %v", err)
		}
	})
	return a
}

// cliResult is what one run of the command line did.
type cliResult struct {
	code           int
	err            error
	stdout, stderr string
	took           time.Duration
}

// runCLI runs the command line as main does, with env as the whole
// environment, bounded by timeout.
func runCLI(t *testing.T, timeout time.Duration, env map[string]string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	start := time.Now()
	err := run(ctx, args, &stdout, &stderr, lookup)
	res := cliResult{err: err, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if err != nil {
		res.code = exitCode(err)
	}
	t.Logf("phonepipe %s → exit %d in %s (err: %v)\nstdout:\n%s\nstderr:\n%s",
		strings.Join(args, " "), res.code, res.took.Round(time.Millisecond), err, res.stdout, res.stderr)
	return res
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fullSummary is GET /v1/imports/{id} with every count.
func fullSummary(t *testing.T, base, id string) importState {
	t.Helper()
	resp, err := http.Get(base + "/v1/imports/" + id)
	if err != nil {
		t.Fatalf("GET import: %v", err)
	}
	defer resp.Body.Close()
	var s importState
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("decode import: %v", err)
	}
	return s
}

var acceptedLine = regexp.MustCompile(`accepted import (\S+) with (\d+) rows`)

// checkSummary checks the summary the CLI printed against the import's state.
func checkSummary(t *testing.T, stdout string, want importState) {
	t.Helper()
	for _, line := range []string{
		fmt.Sprintf("import %s completed: %d rows", want.ID, want.Total),
		fmt.Sprintf("valid       %d", want.Valid),
		fmt.Sprintf("invalid     %d", want.Invalid),
		fmt.Sprintf("duplicates  %d", want.Duplicates),
		fmt.Sprintf("failed      %d", want.Failed),
		"/v1/imports/" + want.ID + "/results?format=csv",
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("summary lacks %q", line)
		}
	}
}

func TestImportWatchPrintsSummary(t *testing.T) {
	a := startInProcess(t)
	const rows = 2000
	file := writeFile(t, "numbers.csv", numbersCSV(rows))

	t.Run("flags", func(t *testing.T) {
		res := runCLI(t, 2*time.Minute, nil, "import", file, "--region", "HU", "--server", a.URL(), "--watch")
		if res.code != 0 {
			t.Fatalf("exit %d: %v", res.code, res.err)
		}
		m := acceptedLine.FindStringSubmatch(res.stdout)
		if m == nil || m[2] != fmt.Sprint(rows) {
			t.Fatalf("no accepted line for %d rows in %q", rows, res.stdout)
		}
		got := fullSummary(t, a.URL(), m[1])
		if got.Status != "completed" || got.Processed != rows {
			t.Fatalf("CLI returned before completion: %+v", got)
		}
		checkSummary(t, res.stdout, got)
		// stderr is not a terminal here: plain lines, no carriage returns,
		// ending with the completed state.
		if strings.Contains(res.stderr, "\r") {
			t.Errorf("progress on a non-terminal has carriage returns: %q", res.stderr)
		}
		if want := fmt.Sprintf("%d/%d rows 100.0%%", rows, rows); !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks final progress %q", want)
		}
	})

	t.Run("environment twins", func(t *testing.T) {
		env := map[string]string{"PHONEPIPE_SERVER": a.URL(), "PHONEPIPE_WATCH": "true", "PHONEPIPE_REGION": "HU"}
		res := runCLI(t, 2*time.Minute, env, "import", file)
		if res.code != 0 {
			t.Fatalf("exit %d: %v", res.code, res.err)
		}
		m := acceptedLine.FindStringSubmatch(res.stdout)
		if m == nil {
			t.Fatalf("no accepted line in %q", res.stdout)
		}
		checkSummary(t, res.stdout, fullSummary(t, a.URL(), m[1]))
	})
}

func TestImportHTTPErrorsExitNonZero(t *testing.T) {
	a := startInProcess(t)
	headerOnly := writeFile(t, "empty.csv", []byte("number,region\n"))
	good := writeFile(t, "good.csv", numbersCSV(10))

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"header-only CSV", []string{"import", headerOnly, "--server", a.URL(), "--watch"},
			[]string{"422", "no data rows", "no_rows"}},
		{"unknown region", []string{"import", good, "--server", a.URL(), "--watch", "--region", "XX"},
			[]string{"422", `default_region "XX"`, "unknown_region"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, time.Minute, nil, tc.args...)
			if res.code == 0 {
				t.Fatalf("exit 0; want non-zero")
			}
			for _, w := range tc.want {
				if !strings.Contains(res.err.Error(), w) {
					t.Errorf("error %q lacks %q", res.err, w)
				}
			}
			if res.stdout != "" {
				t.Errorf("stdout %q; want nothing", res.stdout)
			}
		})
	}
}

func TestImportUnreachableServerExitsNonZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	file := writeFile(t, "good.csv", numbersCSV(10))
	res := runCLI(t, time.Minute, nil, "import", file, "--server", "http://"+addr, "--watch")
	if res.code == 0 || !strings.Contains(res.err.Error(), "upload to http://"+addr) {
		t.Fatalf("exit %d, err %v; want a non-zero exit naming the server", res.code, res.err)
	}
}

// fakeServer accepts one upload and serves its progress over WebSocket with
// a script per connection: conns[i] runs the (i+1)th connection.
type fakeServer struct {
	t     *testing.T
	total int
	conns []func(c *websocket.Conn)
	// refuse, when set, answers upgrades past the scripted ones instead.
	refuse func(w http.ResponseWriter)

	mu     sync.Mutex
	dials  int
	sinces []string
	auths  []string
}

const fakeID = "imp_fake"

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/imports":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":%q,"status":"accepted","total":%d,"created_at":"2025-01-01T00:00:00Z","links":{}}`, fakeID, f.total)
	case r.URL.Path == "/v1/imports/"+fakeID+"/progress":
		f.mu.Lock()
		i := f.dials
		f.dials++
		f.sinces = append(f.sinces, r.URL.Query().Get("since"))
		f.auths = append(f.auths, r.Header.Get("Authorization"))
		f.mu.Unlock()
		if i >= len(f.conns) {
			if f.refuse != nil {
				f.refuse(w)
				return
			}
			http.Error(w, "no more scripted connections", http.StatusInternalServerError)
			return
		}
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			f.t.Errorf("upgrade: %v", err)
			return
		}
		defer c.Close()
		f.conns[i](c)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeServer) stats() (dials int, sinces, auths []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dials, append([]string(nil), f.sinces...), append([]string(nil), f.auths...)
}

// send writes one progress message.
func send(t *testing.T, c *websocket.Conn, typ string, seq int64, s importState) {
	t.Helper()
	s.ID = fakeID
	if err := c.WriteJSON(progressMessage{Type: typ, Seq: seq, Import: s}); err != nil {
		t.Errorf("write %s %d: %v", typ, seq, err)
	}
}

// drop cuts the TCP connection without a close frame, as a crash or a
// network failure would.
func drop(c *websocket.Conn) { _ = c.NetConn().Close() }

func TestImportWatchReconnectsAfterDrop(t *testing.T) {
	final := importState{Status: "completed", Total: 100, Processed: 100, Valid: 70, Invalid: 20, Duplicates: 8, Failed: 2}
	f := &fakeServer{t: t, total: 100}
	f.conns = []func(*websocket.Conn){
		func(c *websocket.Conn) {
			send(t, c, "snapshot", 1, importState{Status: "accepted", Total: 100})
			send(t, c, "progress", 2, importState{Status: "processing", Total: 100, Processed: 40})
			drop(c)
		},
		func(c *websocket.Conn) {
			send(t, c, "snapshot", 3, importState{Status: "processing", Total: 100, Processed: 70})
			send(t, c, "completed", 4, final)
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	file := writeFile(t, "n.csv", []byte("number\n+36301234567\n"))

	res := runCLI(t, 30*time.Second, map[string]string{"PHONEPIPE_API_KEY": "sekret"},
		"import", file, "--server", srv.URL, "--watch")
	if res.code != 0 {
		t.Fatalf("exit %d: %v", res.code, res.err)
	}
	final.ID = fakeID
	checkSummary(t, res.stdout, final)
	dials, sinces, auths := f.stats()
	if dials != 2 {
		t.Errorf("%d connections; want 2", dials)
	}
	if want := []string{"", "2"}; fmt.Sprint(sinces) != fmt.Sprint(want) {
		t.Errorf("since parameters %q; want %q", sinces, want)
	}
	for _, a := range auths {
		if a != "Bearer sekret" {
			t.Errorf("Authorization %q; want the API key as Bearer", a)
		}
	}
	if !strings.Contains(res.stderr, "reconnecting") {
		t.Errorf("stderr does not mention the reconnect: %q", res.stderr)
	}
	for _, want := range []string{"0/100 rows", "100/100 rows 100.0%"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

func TestWatchGivesUpWhenSocketStaysDown(t *testing.T) {
	f := &fakeServer{t: t, total: 100}
	f.conns = []func(*websocket.Conn){
		func(c *websocket.Conn) {
			send(t, c, "snapshot", 1, importState{Status: "processing", Total: 100, Processed: 10})
			drop(c)
		},
	}
	f.refuse = func(w http.ResponseWriter) { http.Error(w, "down for maintenance", http.StatusServiceUnavailable) }
	srv := httptest.NewServer(f)
	defer srv.Close()

	w := newWatcher(srv.URL, "", fakeID)
	w.reconnectTimeout = 500 * time.Millisecond
	w.backoffMin, w.backoffMax = 10*time.Millisecond, 50*time.Millisecond
	var drops int
	w.onDrop = func(error, time.Duration) { drops++ }
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := w.watch(ctx)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "giving up") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v; want giving up after 503s", err)
	}
	if ctx.Err() != nil || took > 3*time.Second {
		t.Errorf("took %s; want about the 500ms bound", took)
	}
	if dials, sinces, _ := f.stats(); dials < 3 || sinces[len(sinces)-1] != "1" {
		t.Errorf("%d dials, sinces %q; want several retries resuming after seq 1", dials, sinces)
	}
	if drops < 2 {
		t.Errorf("%d drops reported", drops)
	}
}

// TestWatchBoundCountsFromTheDrop checks that the reconnect bound starts
// when a connection drops, not at its last message: a long quiet connection
// that drops is still resumed.
func TestWatchBoundCountsFromTheDrop(t *testing.T) {
	f := &fakeServer{t: t}
	f.conns = []func(*websocket.Conn){
		func(c *websocket.Conn) {
			send(t, c, "snapshot", 1, importState{Status: "processing", Total: 10, Processed: 1})
			time.Sleep(600 * time.Millisecond) // quiet for longer than the bound
			drop(c)
		},
		func(c *websocket.Conn) {
			send(t, c, "completed", 2, importState{Status: "completed", Total: 10, Processed: 10, Valid: 10})
		},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	w := newWatcher(srv.URL, "", fakeID)
	w.reconnectTimeout = 300 * time.Millisecond
	w.backoffMin, w.backoffMax = 10*time.Millisecond, 50*time.Millisecond
	final, err := w.watch(t.Context())
	if err != nil || final.Valid != 10 {
		t.Fatalf("watch = %+v, %v; want the completed state", final, err)
	}
}

func TestWatchFailsAtOnceOnClientError(t *testing.T) {
	f := &fakeServer{t: t}
	f.refuse = func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"no such resource"}}`)
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	w := newWatcher(srv.URL, "", fakeID)
	_, err := w.watch(t.Context())
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no such resource") {
		t.Fatalf("err = %v; want the server's 404 message", err)
	}
	if dials, _, _ := f.stats(); dials != 1 {
		t.Errorf("%d dials; a 404 must not be retried", dials)
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	f := &fakeServer{t: t}
	hold := make(chan struct{})
	f.conns = []func(*websocket.Conn){func(c *websocket.Conn) {
		send(t, c, "snapshot", 1, importState{Status: "processing", Total: 10, Processed: 1})
		<-hold
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	defer close(hold)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := newWatcher(srv.URL, "", fakeID).watch(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want the context's error", err)
	}
}

func TestProgressBar(t *testing.T) {
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	states := []importState{
		{ID: "imp_1", Status: "accepted", Total: 1000},
		{ID: "imp_1", Status: "processing", Total: 1000, Processed: 250},
		{ID: "imp_1", Status: "processing", Total: 1000, Processed: 500},
		{ID: "imp_1", Status: "completed", Total: 1000, Processed: 1000},
	}

	t.Run("terminal", func(t *testing.T) {
		var out bytes.Buffer
		b := &progressBar{w: &out, tty: true, now: now, logEvery: time.Hour}
		for i, s := range states {
			if i == 2 {
				b.note("a note")
			}
			b.update(s)
			clock = clock.Add(time.Second)
		}
		got := out.String()
		for _, want := range []string{
			"\r[------------------------------] 0/1000 rows   0.0%  - rows/s  ETA -",
			"\r[#######-----------------------] 250/1000 rows  25.0%  250 rows/s  ETA 3s",
			"a note\n",
			"\r[##############################] 1000/1000 rows 100.0%",
			"done in 3s\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%q", want, got)
			}
		}
	})

	t.Run("plain", func(t *testing.T) {
		var out bytes.Buffer
		b := &progressBar{w: &out, tty: false, now: now, logEvery: 2 * time.Second}
		for _, s := range states {
			b.update(s)
			clock = clock.Add(time.Second)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		// First, then at most one every 2s, and always the final one.
		if len(lines) != 3 || strings.Contains(out.String(), "\r") {
			t.Fatalf("lines %q; want 3 plain lines", lines)
		}
		if want := "import imp_1 completed: 1000/1000 rows 100.0%"; !strings.HasPrefix(lines[2], want) {
			t.Errorf("last line %q; want prefix %q", lines[2], want)
		}
	})
}
