package storage

import (
	"context"
	"fmt"
)

// Handled records which messages each handler has already applied, inside
// the handler's unit of work, so a redelivered message changes nothing.
type Handled struct {
	db *DB
}

// NewHandled returns the idempotency record of db.
func NewHandled(db *DB) *Handled { return &Handled{db: db} }

// FirstTime marks (handler, key) as handled and reports whether it was new.
// It must run in the same transaction as the handler's effects.
func (h *Handled) FirstTime(ctx context.Context, handler, key string) (bool, error) {
	tx, err := MustTx(ctx)
	if err != nil {
		return false, fmt.Errorf("mark %s %s handled: %w", handler, key, err)
	}
	q := `INSERT INTO handled_messages (handler, msg_key) VALUES (?, ?) ON CONFLICT DO NOTHING`
	if h.db.Dialect == MySQL {
		q = `INSERT IGNORE INTO handled_messages (handler, msg_key) VALUES (?, ?)`
	}
	res, err := tx.ExecContext(ctx, h.db.Dialect.Rebind(q), handler, key)
	if err != nil {
		return false, fmt.Errorf("mark %s %s handled: %w", handler, key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark %s %s handled: %w", handler, key, err)
	}
	return n == 1, nil
}
