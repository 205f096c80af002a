package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// timeLayout is how timestamps are stored: sortable, UTC, nanoseconds.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// ErrDuplicateKey is returned by Create when the tenant already used the
// idempotency key.
var ErrDuplicateKey = errors.New("idempotency key already used")

// Imports is the aggregator's state of every import, and the read model of
// GET /v1/imports/{id}.
type Imports struct {
	db *storage.DB
}

// NewImports returns the import store of db.
func NewImports(db *storage.DB) *Imports { return &Imports{db: db} }

const importColumns = `id, tenant, status, total, jobs, jobs_done, processed, valid, invalid,
	duplicates, failed, default_region, webhook_url, seq, created_at, completed_at, phone_metadata`

// Create stores a newly accepted import in the unit of work of ctx.
func (s *Imports) Create(ctx context.Context, im domain.Import, idempotencyKey string) error {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return fmt.Errorf("create import %s: %w", im.ID, err)
	}
	var key any
	if idempotencyKey != "" {
		key = idempotencyKey
	}
	_, err = tx.ExecContext(ctx, s.db.Dialect.Rebind(`INSERT INTO imports (`+importColumns+`, idempotency_key)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`), append(importArgs(im), key)...)
	if err != nil {
		if idempotencyKey != "" && storage.IsUniqueViolation(err) {
			return fmt.Errorf("create import %s: %w", im.ID, ErrDuplicateKey)
		}
		return fmt.Errorf("create import %s: %w", im.ID, err)
	}
	return nil
}

// Get returns a tenant's import, or domain.ErrNotFound.
func (s *Imports) Get(ctx context.Context, tenant, id string) (domain.Import, error) {
	row := s.db.Reader(ctx).QueryRowContext(ctx, s.db.Dialect.Rebind(
		`SELECT `+importColumns+` FROM imports WHERE id = ? AND tenant = ?`), id, tenant)
	im, err := scanImport(row)
	if err != nil {
		return domain.Import{}, fmt.Errorf("get import %s: %w", id, err)
	}
	return im, nil
}

// ByIdempotencyKey returns the tenant's import created with key, or domain.ErrNotFound.
func (s *Imports) ByIdempotencyKey(ctx context.Context, tenant, key string) (domain.Import, error) {
	row := s.db.Reader(ctx).QueryRowContext(ctx, s.db.Dialect.Rebind(
		`SELECT `+importColumns+` FROM imports WHERE tenant = ? AND idempotency_key = ?`), tenant, key)
	im, err := scanImport(row)
	if err != nil {
		return domain.Import{}, fmt.Errorf("get import by idempotency key: %w", err)
	}
	return im, nil
}

// Update loads an import inside the unit of work of ctx, lets fn change it
// and saves it. Writers are serialised by the transaction.
func (s *Imports) Update(ctx context.Context, id string, fn func(*domain.Import) error) (domain.Import, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return domain.Import{}, fmt.Errorf("update import %s: %w", id, err)
	}
	q := `SELECT ` + importColumns + ` FROM imports WHERE id = ?`
	if s.db.Dialect != storage.SQLite {
		q += ` FOR UPDATE`
	}
	im, err := scanImport(tx.QueryRowContext(ctx, s.db.Dialect.Rebind(q), id))
	if err != nil {
		return domain.Import{}, fmt.Errorf("load import %s: %w", id, err)
	}
	if err := fn(&im); err != nil {
		return domain.Import{}, err
	}
	_, err = tx.ExecContext(ctx, s.db.Dialect.Rebind(`UPDATE imports SET status = ?, jobs = ?, jobs_done = ?,
		processed = ?, valid = ?, invalid = ?, duplicates = ?, failed = ?, seq = ?, completed_at = ?
		WHERE id = ?`), string(im.Status), im.Jobs, im.JobsDone, im.Counts.Processed, im.Counts.Valid,
		im.Counts.Invalid, im.Counts.Duplicates, im.Counts.Failed, im.Seq, formatTimePtr(im.CompletedAt), im.ID)
	if err != nil {
		return domain.Import{}, fmt.Errorf("save import %s: %w", id, err)
	}
	return im, nil
}

func importArgs(im domain.Import) []any {
	return []any{im.ID, im.Tenant, string(im.Status), im.Total, im.Jobs, im.JobsDone, im.Counts.Processed,
		im.Counts.Valid, im.Counts.Invalid, im.Counts.Duplicates, im.Counts.Failed, im.DefaultRegion,
		im.WebhookURL, im.Seq, formatTime(im.CreatedAt), formatTimePtr(im.CompletedAt), im.PhoneMetadata}
}

func scanImport(row *sql.Row) (domain.Import, error) {
	var (
		im        domain.Import
		status    string
		created   string
		completed sql.NullString
	)
	err := row.Scan(&im.ID, &im.Tenant, &status, &im.Total, &im.Jobs, &im.JobsDone, &im.Counts.Processed,
		&im.Counts.Valid, &im.Counts.Invalid, &im.Counts.Duplicates, &im.Counts.Failed, &im.DefaultRegion,
		&im.WebhookURL, &im.Seq, &created, &completed, &im.PhoneMetadata)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Import{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Import{}, err
	}
	im.Status = domain.ImportStatus(status)
	if im.CreatedAt, err = parseTime(created); err != nil {
		return domain.Import{}, err
	}
	if completed.Valid {
		t, err := parseTime(completed.String)
		if err != nil {
			return domain.Import{}, err
		}
		im.CompletedAt = &t
	}
	return im, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func formatTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t, nil
}
