package sqlitepubsub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// Option changes how OpenDB opens a database.
type Option func(*options)

type options struct {
	checkpointEvery time.Duration
	// restartFrames is the log length at which the checkpointer has the
	// log started over; walRestartFrames unless a test sets it.
	restartFrames int
}

// BackgroundCheckpoints moves the write-ahead log's checkpoints off the
// writers: SQLite's automatic checkpoint (which runs inside the commit of
// whichever writer crosses 1000 WAL pages, while it holds the write lock)
// is switched off, and a goroutine with a connection of its own runs a
// PASSIVE checkpoint every interval instead, on another core, never
// waiting for readers or writers. Closing the pool stops it.
//
// SQLite starts the log over (writes it from its first frame again) only in
// a writer that begins after a checkpoint has copied the whole log. Under a
// steady stream of writers that moment never comes: each writer begins as
// the previous one commits, after the checkpoint. The log then grows for as
// long as writing goes on (1.7 GB over a 100,000-row import), and every
// commit extends the file, which costs the filesystem a block allocation
// per page. So once the log holds more than walRestartFrames, the
// checkpointer also takes the pool's write gate, in its priority lane, between
// two writers, and runs a RESTART checkpoint there: it copies the few frames
// written since the last PASSIVE one and makes sure no reader still needs
// the log, so the next writer starts it over. PASSIVE rounds first catch up
// with what the writers added meanwhile, so that the gate is held for a
// short tail only (see checkpoint). A reader that still holds an old
// snapshot makes it give up (busy_timeout is 0) until the next interval.
func BackgroundCheckpoints(every time.Duration) Option {
	return func(o *options) { o.checkpointEvery = every }
}

// walSizeLimit bounds the log file left on disk once it is started over.
const walSizeLimit = 64 << 20

// walRestartFrames is the log length (in pages) beyond which the
// checkpointer has the log started over.
const walRestartFrames = 4096

// checkpointer runs PASSIVE checkpoints of one database file.
type checkpointer struct {
	db   *sql.DB
	gate *writeGate
	// restartFrames: see options.
	restartFrames int
	cancel        context.CancelFunc
	done          chan struct{}
	// observe, if set (by tests), sees each checkpoint's mode and the
	// length of the log it found.
	observe func(mode string, logFrames int)

	mu      sync.Mutex
	lastErr error
}

// startCheckpointer opens a connection of its own on path and checkpoints
// every interval until close. gate is the write gate of the pool whose
// writers it checkpoints.
func startCheckpointer(path string, every time.Duration, gate *writeGate, restartFrames int) (*checkpointer, error) {
	if every <= 0 {
		return nil, fmt.Errorf("checkpoint interval %v is not positive", every)
	}
	dsn, err := dsn(path, url.Values{"_pragma": {"busy_timeout(0)"}})
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint connection to %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	if restartFrames <= 0 {
		restartFrames = walRestartFrames
	}
	c := &checkpointer{db: db, gate: gate, restartFrames: restartFrames, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx, every)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context, every time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := c.checkpoint(ctx)
		if err != nil && (isBusy(err) || errors.Is(err, context.Canceled)) {
			err = nil // another checkpoint runs, or we are closing: next time
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
	}
}

// checkpoint runs one PASSIVE checkpoint and, when the log has grown past
// restartFrames, a RESTART one between two writers.
//
// The RESTART holds the write gate for as long as it copies, so it must
// find little left to copy. A PASSIVE checkpoint copies the log as it was
// when it began, and writers go on committing while it copies (at the
// 1M-row import's pace, thousands of pages in the time one PASSIVE copies
// ten thousand), so a RESTART taken right after one PASSIVE held the gate
// — and with it every writer and every upload — for 80 ms at the median,
// twice a second. Further PASSIVE rounds first copy what was written
// meanwhile, each finding less, until one finds at most catchUpFrames new
// pages or catchUpRounds have run (writers faster than the copy keep the
// backlog from shrinking; the RESTART then still bounds the log).
func (c *checkpointer) checkpoint(ctx context.Context) error {
	logFrames, err := c.checkpointIn(ctx, "PASSIVE")
	if err != nil || logFrames <= c.restartFrames {
		return err
	}
	for round := 0; round < catchUpRounds; round++ {
		copied := logFrames
		if logFrames, err = c.checkpointIn(ctx, "PASSIVE"); err != nil {
			return err
		}
		if logFrames <= c.restartFrames {
			return nil // a writer started the log over meanwhile
		}
		if added := newFrames(copied, logFrames); added <= catchUpFrames {
			break
		}
	}
	// With priority: the gate is held for the frames written while it
	// waits, so it waits for the current writer only.
	if !c.gate.acquire(WithWritePriority(ctx)) {
		return nil // writers keep the gate: next time
	}
	defer c.gate.release()
	_, err = c.checkpointIn(ctx, "RESTART")
	return err
}

// newFrames is how many pages a log of logFrames holds that a log of
// copied (all copied) did not: all of them if the log was started over.
func newFrames(copied, logFrames int) int {
	if logFrames < copied {
		return logFrames
	}
	return logFrames - copied
}

// catchUpFrames is a number of log pages small enough for the RESTART
// checkpoint to copy while it holds the write gate.
const catchUpFrames = 256

// catchUpRounds bounds the PASSIVE rounds run before a RESTART.
const catchUpRounds = 8

// checkpointIn runs one checkpoint in mode and returns the length of the
// log when it began, all of which it copied unless a reader still needed
// part of it.
func (c *checkpointer) checkpointIn(ctx context.Context, mode string) (logFrames int, err error) {
	var busy, checkpointed int
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		return 0, fmt.Errorf("checkpoint (%s): %w", mode, err)
	}
	if c.observe != nil {
		c.observe(mode, logFrames)
	}
	return logFrames, nil
}

// close stops the goroutine and closes its connection; it returns the
// error of the last checkpoint, if it failed for a reason other than a
// concurrent checkpoint.
func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	c.mu.Lock()
	err := c.lastErr
	c.mu.Unlock()
	return errors.Join(err, c.db.Close())
}
