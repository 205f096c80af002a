package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
)

// ErrNoTx is returned when a write is attempted outside a unit of work.
var ErrNoTx = errors.New("no transaction in context")

type txKey struct{}

// WithTx returns a context carrying tx as the current unit of work.
func WithTx(ctx context.Context, tx *sql.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// TxFrom returns the unit of work of ctx: one set by WithTx, else the
// transaction in which a watermill-sql subscriber consumes the message.
func TxFrom(ctx context.Context) (*sql.Tx, bool) {
	if ctx == nil {
		return nil, false
	}
	if tx, ok := ctx.Value(txKey{}).(*sql.Tx); ok && tx != nil {
		return tx, true
	}
	return watermillsql.TxFromContext(ctx)
}

// MustTx returns the unit of work of ctx or ErrNoTx.
func MustTx(ctx context.Context) (*sql.Tx, error) {
	tx, ok := TxFrom(ctx)
	if !ok {
		return nil, ErrNoTx
	}
	return tx, nil
}

// InTx runs fn in a new transaction on db, committing when fn returns nil.
// If ctx already carries a transaction, fn joins it instead.
func InTx(ctx context.Context, db *sql.DB, fn func(ctx context.Context) error) (err error) {
	if _, ok := TxFrom(ctx); ok {
		return fn(ctx)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(WithTx(ctx, tx)); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
