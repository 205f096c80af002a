package sqlitepubsub

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitQueued waits until the gate has n waiters in all.
func waitQueued(t *testing.T, g *writeGate, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		queued := len(g.urgent) + len(g.normal)
		g.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writers queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriteGateServesPriorityFirst(t *testing.T) {
	g := newWriteGate()
	ctx := context.Background()
	if !g.acquire(ctx) {
		t.Fatal("free gate not acquired")
	}
	order := make(chan string, 4)
	enqueue := func(name string, ctx context.Context, queued int) {
		go func() {
			if g.acquire(ctx) {
				order <- name
				g.release()
			}
		}()
		waitQueued(t, g, queued)
	}
	enqueue("normal-1", ctx, 1)
	enqueue("normal-2", ctx, 2)
	enqueue("urgent-1", WithWritePriority(ctx), 3)
	enqueue("urgent-2", WithWritePriority(ctx), 4)
	g.release()
	want := []string{"urgent-1", "urgent-2", "normal-1", "normal-2"}
	for i, w := range want {
		if got := <-order; got != w {
			t.Fatalf("turn %d went to %s, want %s", i, got, w)
		}
	}
	if !g.acquire(ctx) {
		t.Fatal("gate not free after everyone released it")
	}
	g.release()
}

func TestWriteGateWaiterGivingUpLeavesQueue(t *testing.T) {
	g := newWriteGate()
	if !g.acquire(context.Background()) {
		t.Fatal("free gate not acquired")
	}
	ctx, cancel := context.WithCancel(context.Background())
	gave := make(chan bool)
	go func() { gave <- g.acquire(ctx) }()
	waitQueued(t, g, 1)
	cancel()
	if <-gave {
		t.Fatal("a cancelled waiter got the gate")
	}
	waitQueued(t, g, 0)
	g.release()
	if !g.acquire(context.Background()) {
		t.Fatal("gate not free after its holder released it")
	}
	g.release()
}

// TestWriteGateHandoverRace releases the gate at the moment its waiter
// gives up, many times: the gate must never be lost or held twice.
func TestWriteGateHandoverRace(t *testing.T) {
	g := newWriteGate()
	for range 500 {
		if !g.acquire(context.Background()) {
			t.Fatal("free gate not acquired")
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan bool)
		go func() { got <- g.acquire(ctx) }()
		waitQueued(t, g, 1)
		go cancel()
		g.release()
		if <-got {
			g.release()
		}
		cancel()
		g.mu.Lock()
		held, queued := g.held, len(g.normal)+len(g.urgent)
		g.mu.Unlock()
		if held || queued != 0 {
			t.Fatalf("after the race: held=%v queued=%d, want free and empty", held, queued)
		}
	}
}

// TestBackgroundCheckpoints checks that with background checkpoints the
// writers' commits leave the log to the checkpointer, which copies it into
// the database file, and that closing the pool stops it.
func TestBackgroundCheckpoints(t *testing.T) {
	path := t.TempDir() + "/cp.db"
	db, err := OpenDB(path, BackgroundCheckpoints(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var auto int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d, want 0 (checkpoints in the background)", auto)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (v TEXT)`); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (randomblob(4000))`); err != nil {
			t.Fatal(err)
		}
	}
	// The rows are in the log only; the database file grows when the
	// background checkpointer copies them in (nobody else checkpoints).
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > 200*4000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes: the log was not checkpointed", info.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// insertPages adds ? rows of about a page each to the table of openPagesDB.
const insertPages = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
	INSERT INTO t SELECT randomblob(4000) FROM n`

// openPagesDB opens a database at path with a table t for insertPages,
// closed when the test ends.
func openPagesDB(t *testing.T, path string, opts ...Option) *sql.DB {
	t.Helper()
	db, err := OpenDB(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.ExecContext(context.Background(), `CREATE TABLE t (v BLOB)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// withRestartFrames lowers the log length at which the checkpointer has
// the log started over.
func withRestartFrames(n int) Option { return func(o *options) { o.restartFrames = n } }

// TestLogStartsOverUnderSteadyWriters checks that the log does not grow
// for as long as writers follow each other without a gap: SQLite starts it
// over only in a writer that begins after a complete checkpoint, which
// such writers never do, so the checkpointer makes that gap itself.
func TestLogStartsOverUnderSteadyWriters(t *testing.T) {
	path := t.TempDir() + "/steady.db"
	db := openPagesDB(t, path, BackgroundCheckpoints(10*time.Millisecond), withRestartFrames(256))
	ctx := context.Background()
	const (
		writers = 3
		txs     = 150 // per writer, of 8 pages each: ~15 MB of log in all
	)
	var (
		wg     sync.WaitGroup
		maxWAL atomic.Int64
		stop   = make(chan struct{})
		done   = make(chan struct{})
	)
	go func() { // sample the size of the log file
		defer close(done)
		for {
			if info, err := os.Stat(path + "-wal"); err == nil && info.Size() > maxWAL.Load() {
				maxWAL.Store(info.Size())
			}
			select {
			case <-time.After(2 * time.Millisecond):
			case <-stop:
				return
			}
		}
	}()
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range txs {
				tx, err := db.BeginTx(ctx, nil)
				if err == nil {
					_, err = tx.ExecContext(ctx, insertPages, 8)
					if err == nil {
						err = tx.Commit()
					} else {
						_ = tx.Rollback()
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-done
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	written := int64(writers * txs * 8 * 4096)
	if got := maxWAL.Load(); got > written/4 {
		t.Fatalf("the log grew to %d bytes while %d were written: it was not started over", got, written)
	}
	t.Logf("log peaked at %d bytes while %d were written", maxWAL.Load(), written)
}

// TestRestartFindsLittleToCopy checks that the RESTART checkpoint, which
// holds the write gate while it copies, is preceded by PASSIVE rounds until
// one of them found few new log pages: writers that commit while the first
// PASSIVE copies would otherwise leave their pages to be copied under the
// gate, stalling every writer and upload behind it.
func TestRestartFindsLittleToCopy(t *testing.T) {
	path := t.TempDir() + "/catchup.db"
	db := openPagesDB(t, path)
	ctx := context.Background()
	write := func(pages int) {
		t.Helper()
		if _, err := db.ExecContext(ctx, insertPages, pages); err != nil {
			t.Fatal(err)
		}
	}
	write(400)
	// No tick in this test: it calls checkpoint itself.
	c, err := startCheckpointer(path, time.Hour, newWriteGate(), 200)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	type step struct {
		mode      string
		logFrames int
	}
	var steps []step
	c.observe = func(mode string, logFrames int) {
		steps = append(steps, step{mode, logFrames})
		if len(steps) == 1 {
			// A writer commits right after the first PASSIVE, as writers
			// do while one copies. Here the log was all copied, so the
			// writer starts it over: the next PASSIVE finds a shorter log.
			write(catchUpFrames + 100)
		}
	}
	if err := c.checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoints: %v", steps)
	n := len(steps)
	if n < 3 || steps[n-1].mode != "RESTART" || steps[n-2].mode != "PASSIVE" {
		t.Fatalf("checkpoints %v: want PASSIVE rounds ending in a RESTART", steps)
	}
	// Pages a log holds that the previous checkpoint's log did not (a
	// shorter log was started over: all its pages are new).
	added := func(prev, next step) int {
		if next.logFrames < prev.logFrames {
			return next.logFrames
		}
		return next.logFrames - prev.logFrames
	}
	if first := added(steps[0], steps[1]); first <= catchUpFrames {
		t.Fatalf("checkpoints %v: the write during the first PASSIVE added only %d pages; the test needs more than %d",
			steps, first, catchUpFrames)
	}
	if copied := added(steps[n-2], steps[n-1]); copied > catchUpFrames {
		t.Fatalf("checkpoints %v: the RESTART found %d pages the PASSIVE before it had not copied, want at most %d",
			steps, copied, catchUpFrames)
	}
}
