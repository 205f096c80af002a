package storage

import (
	"context"
	"fmt"
	"strings"
)

// StoredRow is one uploaded data row as kept until it is processed.
type StoredRow struct {
	Row    int
	Input  string
	Region string
	Ref    string
}

// Uploads stores the rows of accepted uploads. Rows are written once, in the
// transaction that accepts the import, and read by validators by range.
type Uploads struct {
	db *DB
}

// NewUploads returns the upload store of db.
func NewUploads(db *DB) *Uploads { return &Uploads{db: db} }

// uploadInsertBatch rows go into one INSERT statement.
const uploadInsertBatch = 256

// RowWriter appends rows of one import inside the caller's transaction,
// batching them into multi-row INSERTs. Call Flush at the end.
type RowWriter struct {
	ctx      context.Context
	tx       Querier
	dialect  Dialect
	importID string
	pending  []any
	n        int
}

// Writer returns a RowWriter for importID in the unit of work of ctx.
func (u *Uploads) Writer(ctx context.Context, importID string) (*RowWriter, error) {
	tx, err := MustTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("store upload rows: %w", err)
	}
	return &RowWriter{ctx: ctx, tx: tx, dialect: u.db.Dialect, importID: importID,
		pending: make([]any, 0, uploadInsertBatch*5)}, nil
}

// Add queues one row, writing a batch when it is full.
func (w *RowWriter) Add(r StoredRow) error {
	w.pending = append(w.pending, w.importID, r.Row, r.Input, r.Region, r.Ref)
	w.n++
	if w.n == uploadInsertBatch {
		return w.Flush()
	}
	return nil
}

// Flush writes the queued rows.
func (w *RowWriter) Flush() error {
	if w.n == 0 {
		return nil
	}
	q := "INSERT INTO import_rows (import_id, row_num, input, region, ref) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?),", w.n), ",")
	if _, err := w.tx.ExecContext(w.ctx, w.dialect.Rebind(q), w.pending...); err != nil {
		return fmt.Errorf("insert upload rows of %s: %w", w.importID, err)
	}
	w.pending = w.pending[:0]
	w.n = 0
	return nil
}

// Rows returns rows first..last (inclusive) of an import, in order.
func (u *Uploads) Rows(ctx context.Context, importID string, first, last int) ([]StoredRow, error) {
	rows, err := u.db.Reader(ctx).QueryContext(ctx, u.db.Dialect.Rebind(
		`SELECT row_num, input, region, ref FROM import_rows
		 WHERE import_id = ? AND row_num BETWEEN ? AND ? ORDER BY row_num`), importID, first, last)
	if err != nil {
		return nil, fmt.Errorf("read rows %d..%d of %s: %w", first, last, importID, err)
	}
	defer rows.Close()
	out := make([]StoredRow, 0, last-first+1)
	for rows.Next() {
		var r StoredRow
		if err := rows.Scan(&r.Row, &r.Input, &r.Region, &r.Ref); err != nil {
			return nil, fmt.Errorf("scan upload row of %s: %w", importID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows of %s: %w", importID, err)
	}
	return out, nil
}
