package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the test reads the embedded database directly
)

// binary is the phonepipe executable built once for the process tests.
type binary struct{ path string }

// buildBinary compiles ./cmd/phonepipe (with the race detector when the
// tests run with it) into a temp dir.
func buildBinary(t *testing.T) binary {
	t.Helper()
	out := filepath.Join(t.TempDir(), "phonepipe")
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build phonepipe: %v", err)
	}
	return binary{path: out}
}

// child is a running phonepipe process.
type child struct {
	cmd     *exec.Cmd
	url     string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

var servingLine = regexp.MustCompile(`serving (http://\S+)`)

// start runs `phonepipe serve` on dataDir and waits for its start-up line.
func (b binary) start(t *testing.T, dataDir string, extra ...string) *child {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, extra...)
	cmd := exec.Command(b.path, args...)
	cmd.Stderr = &prefixWriter{t: t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start phonepipe: %v", err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	select {
	case c.url = <-urlc:
	case <-c.done:
		t.Fatalf("phonepipe exited before serving: %v", c.waitErr)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("phonepipe did not print its serving line")
	}
	t.Cleanup(func() { c.kill() })
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// stop sends SIGTERM and waits for a graceful exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
		if c.waitErr != nil {
			t.Fatalf("graceful stop: %v", c.waitErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("phonepipe did not stop within 60s of SIGINT")
	}
}

// prefixWriter forwards a child's log lines into the test log.
type prefixWriter struct{ t *testing.T }

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log("child: " + line)
	}
	return len(p), nil
}

// openData opens the embedded database of a stopped service read-only.
func openData(t *testing.T, dataDir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "phonepipe.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func queryInt(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// checkExactlyOnce asserts the invariants a crash must not break.
func checkExactlyOnce(t *testing.T, db *sql.DB, importID string, total int) {
	t.Helper()
	if n := queryInt(t, db, `SELECT COUNT(*) FROM results WHERE import_id = ?`, importID); n != total {
		t.Errorf("%d results, want %d", n, total)
	}
	if n := queryInt(t, db, `SELECT COUNT(DISTINCT row_num) FROM results WHERE import_id = ? AND row_num BETWEEN 1 AND ?`, importID, total); n != total {
		t.Errorf("%d distinct result rows, want %d", n, total)
	}
	completed := queryInt(t, db, `SELECT COUNT(*) FROM "watermill_import_completed_v1" WHERE CAST(payload AS TEXT) LIKE ?`,
		fmt.Sprintf(`%%"id":"%s"%%`, importID))
	if completed != 1 {
		t.Errorf("%d ImportCompleted messages, want exactly 1", completed)
	}
	gaps := queryInt(t, db, `SELECT COUNT(*) FROM (SELECT stream_id FROM number_events GROUP BY stream_id
		HAVING MIN(version) <> 1 OR MAX(version) <> COUNT(*) OR COUNT(DISTINCT version) <> COUNT(*))`)
	if gaps != 0 {
		t.Errorf("%d streams with a gap or a repeated version", gaps)
	}
	heads := queryInt(t, db, `SELECT COUNT(*) FROM stream_heads h WHERE h.version <>
		(SELECT COALESCE(MAX(version), 0) FROM number_events e WHERE e.stream_id = h.stream_id)`)
	if heads != 0 {
		t.Errorf("%d stream heads ahead of or behind their projected events", heads)
	}
}
