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
}

// BackgroundCheckpoints moves the write-ahead log's checkpoints off the
// writers: SQLite's automatic checkpoint (which runs inside the commit of
// whichever writer crosses 1000 WAL pages, while it holds the write lock)
// is switched off, and a goroutine with a connection of its own runs a
// PASSIVE checkpoint every interval instead, on another core, never
// waiting for readers or writers. Closing the pool stops it.
//
// When the checkpointer cannot keep up (a reader holding an old snapshot),
// the log simply grows until the next checkpoint that can finish; once one
// has, the next writer starts the log over.
func BackgroundCheckpoints(every time.Duration) Option {
	return func(o *options) { o.checkpointEvery = every }
}

// walSizeLimit bounds the log file left on disk once it is started over.
const walSizeLimit = 64 << 20

// checkpointer runs PASSIVE checkpoints of one database file.
type checkpointer struct {
	db     *sql.DB
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	lastErr error
}

// startCheckpointer opens a connection of its own on path and checkpoints
// every interval until close.
func startCheckpointer(path string, every time.Duration) (*checkpointer, error) {
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
	c := &checkpointer{db: db, cancel: cancel, done: make(chan struct{})}
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

// checkpoint runs one PASSIVE checkpoint.
func (c *checkpointer) checkpoint(ctx context.Context) error {
	var busy, logFrames, checkpointed int
	err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &checkpointed)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
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
