package webhooks

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"
)

// Store is the durable outbox: subscriptions, tenant secrets, events,
// deliveries and attempts. All of the package's SQL lives in Store methods. It
// is safe for concurrent use, also by several processes sharing the database.
type Store struct {
	db      *sql.DB
	dialect Dialect
	now     func() time.Time // clock for enqueue and resend times
}

// NewStore returns a Store using db, which must be a database of dialect d.
// Call Migrate before first use.
func NewStore(db *sql.DB, d Dialect) *Store {
	return &Store{db: db, dialect: d, now: time.Now}
}

// Migrate creates the Store's tables and indexes if they do not exist:
// webhook_subscriptions, tenant_secrets, webhook_events, webhook_deliveries and
// webhook_attempts.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.dialect.validate(); err != nil {
		return err
	}
	for _, stmt := range s.dialect.ddl() {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("webhooks: migrate: %w", err)
		}
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.dialect.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.dialect.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.dialect.rebind(query), args...)
}

// inTx runs fn in a transaction on the Store's database, committing when fn
// returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("webhooks: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("webhooks: commit: %w", err)
	}
	return nil
}

// affectedOne reports whether res changed exactly one row.
func affectedOne(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("webhooks: rows affected: %w", err)
	}
	return n == 1, nil
}

// newID returns prefix followed by 16 random bytes in hex.
func newID(prefix string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhooks: generating id: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

func toMillis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMillis(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMillis(v.Int64)
	return &t
}
