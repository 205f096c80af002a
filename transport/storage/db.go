package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
)

// SQLiteFileName is the name of the embedded database inside --data-dir.
const SQLiteFileName = "phonepipe.db"

// DB is one database as phonepipe uses it: a pool for writes (message
// consumption, projections, uploads) and a pool for reads (the HTTP API).
// For server databases both pools are the same.
type DB struct {
	Write   *sql.DB
	Read    *sql.DB
	Dialect Dialect
	// Path is the file of an embedded database, empty otherwise.
	Path string
}

// checkpointEvery is how often the embedded database's write-ahead log is
// checkpointed, off the writers' path (see sqlitepubsub.BackgroundCheckpoints).
const checkpointEvery = 250 * time.Millisecond

// OpenSQLite opens (creating if needed) the embedded database in dataDir.
func OpenSQLite(dataDir string) (*DB, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, SQLiteFileName)
	w, err := sqlitepubsub.OpenDB(path, sqlitepubsub.BackgroundCheckpoints(checkpointEvery))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := sqlitepubsub.OpenReadOnlyDB(path)
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	return &DB{Write: w, Read: r, Dialect: SQLite, Path: path}, nil
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.Write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close closes both pools.
func (d *DB) Close() error {
	var errs []error
	if d.Read != nil && d.Read != d.Write {
		errs = append(errs, d.Read.Close())
	}
	if d.Write != nil {
		errs = append(errs, d.Write.Close())
	}
	return errors.Join(errs...)
}

// Querier is what both *sql.DB and *sql.Tx offer for queries.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Reader returns the unit of work of ctx if there is one, else the read pool.
func (d *DB) Reader(ctx context.Context) Querier {
	if tx, ok := TxFrom(ctx); ok {
		return tx
	}
	return d.Read
}

// WithWritePriority marks ctx's write transactions on the embedded
// database as ones a client is waiting for: they are served before the
// writers already queued (see sqlitepubsub.WithWritePriority). Other
// databases have no such queue and ignore the mark.
func WithWritePriority(ctx context.Context) context.Context {
	return sqlitepubsub.WithWritePriority(ctx)
}
