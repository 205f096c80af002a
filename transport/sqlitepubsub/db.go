package sqlitepubsub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// driverName is the database/sql driver name of modernc.org/sqlite.
const driverName = "sqlite"

// busyTimeout is how long a connection waits for a lock held by another
// connection (most often the write lock) before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// OpenDB opens (creating if needed) the SQLite database file at path for
// read-write use.
//
// Every pooled connection is configured through modernc DSN parameters, so
// the settings survive the pool opening new connections:
//
//   - journal_mode=WAL: readers never block the writer and vice versa;
//   - busy_timeout=10s: wait for locks instead of failing at once;
//   - foreign_keys=ON;
//   - synchronous=NORMAL: durable across application crashes, and with WAL
//     the database stays consistent after a power loss (the last
//     transactions may be lost);
//   - cache_size=64MiB per connection, so that large write transactions do
//     not spill dirty pages into the WAL before they commit;
//   - _txlock=immediate: every transaction starts with BEGIN IMMEDIATE and
//     thus holds the write lock from its first statement. Read-then-write
//     transactions never fail with SQLITE_BUSY when upgrading from a read
//     snapshot, and the subscriber's read-deliver-ack cycle is serialized
//     with every other writer (see the package documentation). Transactions
//     begun with sql.TxOptions{ReadOnly: true} use a plain deferred BEGIN.
//
// In addition, the pool queues its own writers in first-come, first-served
// order before they ask SQLite for the write lock: read-write transactions
// (until they end) and INSERT/UPDATE/DELETE/REPLACE statements executed
// outside a transaction. SQLite's busy handler just sleeps and retries, so
// without that queue a subscriber draining a backlog — it commits a batch
// and immediately begins the next — would starve every other writer until
// their busy_timeout expired. Queries and read-only transactions do not
// queue. (*sql.Conn).Raw yields a wrapper whose Unwrap() driver.Conn method
// returns the modernc.org/sqlite connection.
//
// The returned pool is also a valid watermillsql.Beginner and
// watermillsql.ContextExecutor. Options: BackgroundCheckpoints.
func OpenDB(path string, opts ...Option) (*sql.DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"foreign_keys(1)",
		"synchronous(NORMAL)",
		// 64 MiB page cache per connection: large write transactions
		// otherwise spill dirty pages into the WAL mid-transaction.
		"cache_size(-65536)",
		// The statement journal of every SAVEPOINT (one per handler
		// attempt) stays in memory instead of a temp file.
		"temp_store(MEMORY)",
	}
	if o.checkpointEvery > 0 {
		pragmas = append(pragmas, "wal_autocheckpoint(0)", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	}
	dsn, err := dsn(path, url.Values{"_pragma": pragmas, "_txlock": {"immediate"}})
	if err != nil {
		return nil, err
	}
	connector, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	gated := &gatedConnector{Connector: connector, gate: newWriteGate()}
	if o.checkpointEvery > 0 {
		if gated.checkpoints, err = startCheckpointer(path, o.checkpointEvery, gated.gate, o.restartFrames); err != nil {
			return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
		}
	}
	db := sql.OpenDB(gated)
	// Writers are serialized by SQLite anyway; keep a few idle connections so
	// that bursts of concurrent publishers do not reopen (and re-configure)
	// connections all the time.
	db.SetMaxIdleConns(8)
	if err := db.PingContext(context.Background()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return db, nil
}

// OpenReadOnlyDB opens a second pool on the database file at path for
// queries only: every connection has query_only set (any write fails with
// SQLITE_READONLY) and transactions use a deferred BEGIN, which in WAL mode
// reads a snapshot without taking any lock a writer waits for. HTTP reads
// therefore never wait for the writer, and the writer never waits for them.
//
// Open the read-write pool with OpenDB first: it switches the file to WAL
// mode, which OpenReadOnlyDB cannot do and checks for.
func OpenReadOnlyDB(path string) (*sql.DB, error) {
	dsn, err := dsn(path, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"foreign_keys(1)",
			"query_only(1)",
		},
	})
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s read-only: %w", path, err)
	}
	db.SetMaxIdleConns(8)

	var mode string
	if err := db.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite database %s read-only: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite database %s read-only: journal mode is %q, not WAL (open it with OpenDB first)", path, mode)
	}
	return db, nil
}

// dsn builds a modernc.org/sqlite DSN: the plain file path, then the query
// parameters the driver interprets.
func dsn(path string, params url.Values) (string, error) {
	if path == "" {
		return "", errors.New("sqlite database path is empty")
	}
	if strings.ContainsRune(path, '?') {
		return "", fmt.Errorf("sqlite database path %q must not contain '?'", path)
	}
	if strings.HasPrefix(path, "file:") {
		return "", fmt.Errorf("sqlite database path %q must be a file path, not a URI", path)
	}
	return path + "?" + params.Encode(), nil
}
