package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The advisory lock that serializes schema changes across processes
// (PostgreSQL takes a number, MySQL a name).
const (
	migrationLockKey  = 0x70686f6e65 // "phone"
	migrationLockName = "phonepipe.migrate"
)

// WithMigrationLock runs fn while holding a database-wide lock, so that
// processes starting together do not create the same tables at once
// (PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent
// twin). SQLite needs no lock: fn's statements take its write lock anyway.
func (d *DB) WithMigrationLock(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if d.Dialect != Postgres && d.Dialect != MySQL {
		return fn(ctx)
	}
	conn, err := d.Write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	if d.Dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLockKey)); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer func() {
			if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLockKey)); uerr != nil {
				err = errors.Join(err, fmt.Errorf("migration unlock: %w", uerr))
			}
		}()
		return fn(ctx)
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, 120)`, migrationLockName).Scan(&got); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return errors.New("migration lock: timed out waiting for another process")
	}
	defer func() {
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(?)`, migrationLockName); uerr != nil {
			err = errors.Join(err, fmt.Errorf("migration unlock: %w", uerr))
		}
	}()
	return fn(ctx)
}
