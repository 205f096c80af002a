package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// LookupImports is Imports with the lookup side of each import's state:
// how many rows await a lookup (Counts.Awaiting) and since when every job
// is counted (ValidatedAt). It keeps them in import_lookups, next to the
// import's row, in the same unit of work and under the same lock; an
// import that awaits nothing has no row there.
type LookupImports struct {
	imports *Imports
	db      *storage.DB
}

// NewLookupImports returns the aggregator's import store with lookups.
func NewLookupImports(imports *Imports, db *storage.DB) *LookupImports {
	return &LookupImports{imports: imports, db: db}
}

// lookupState is an import's row in import_lookups.
type lookupState struct {
	awaiting    int
	validatedAt *time.Time
}

// Update loads an import with its lookup state inside the unit of work of
// ctx, lets fn change it and saves both.
func (s *LookupImports) Update(ctx context.Context, id string, fn func(*domain.Import) error) (domain.Import, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return domain.Import{}, fmt.Errorf("update import %s: %w", id, err)
	}
	return s.imports.Update(ctx, id, func(im *domain.Import) error {
		before, err := s.load(ctx, tx, id)
		if err != nil {
			return err
		}
		im.Counts.Awaiting, im.ValidatedAt = before.awaiting, before.validatedAt
		if err := fn(im); err != nil {
			return err
		}
		return s.save(ctx, tx, id, before, *im)
	})
}

func (s *LookupImports) load(ctx context.Context, tx storage.Querier, id string) (lookupState, error) {
	var (
		st          lookupState
		validatedAt int64
	)
	err := tx.QueryRowContext(ctx, s.db.Dialect.Rebind(`SELECT awaiting, validated_at FROM import_lookups WHERE import_id = ?`),
		id).Scan(&st.awaiting, &validatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return lookupState{}, nil
	}
	if err != nil {
		return lookupState{}, fmt.Errorf("load lookup state of %s: %w", id, err)
	}
	if validatedAt > 0 {
		t := time.UnixMilli(validatedAt).UTC()
		st.validatedAt = &t
	}
	return st, nil
}

func (s *LookupImports) save(ctx context.Context, tx storage.Querier, id string, before lookupState, im domain.Import) error {
	after := lookupState{awaiting: im.Counts.Awaiting, validatedAt: im.ValidatedAt}
	if im.Status == domain.StatusCompleted {
		after = lookupState{}
	}
	same := before.awaiting == after.awaiting && (before.validatedAt == nil) == (after.validatedAt == nil) &&
		(before.validatedAt == nil || before.validatedAt.Equal(*after.validatedAt))
	if same {
		return nil
	}
	d := s.db.Dialect
	if after.awaiting == 0 && after.validatedAt == nil {
		if _, err := tx.ExecContext(ctx, d.Rebind(`DELETE FROM import_lookups WHERE import_id = ?`), id); err != nil {
			return fmt.Errorf("clear lookup state of %s: %w", id, err)
		}
		return nil
	}
	var validatedAt int64
	if after.validatedAt != nil {
		validatedAt = millis(*after.validatedAt)
	}
	q := `INSERT INTO import_lookups (import_id, awaiting, validated_at) VALUES (?, ?, ?) ` +
		d.OnConflictUpdate("import_id") + ` awaiting = ` + d.Excluded("awaiting") + `, validated_at = ` + d.Excluded("validated_at")
	if _, err := tx.ExecContext(ctx, d.Rebind(q), id, after.awaiting, validatedAt); err != nil {
		return fmt.Errorf("save lookup state of %s: %w", id, err)
	}
	return nil
}

// Overdue returns up to limit imports whose rows still await lookups
// although every job was counted at or before validatedBefore. It reads
// committed state (no unit of work needed).
func (s *LookupImports) Overdue(ctx context.Context, validatedBefore time.Time, limit int) ([]string, error) {
	rs, err := s.db.Reader(ctx).QueryContext(ctx, s.db.Dialect.Rebind(`SELECT import_id FROM import_lookups
		WHERE awaiting > 0 AND validated_at > 0 AND validated_at <= ? ORDER BY validated_at, import_id LIMIT ?`),
		millis(validatedBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("overdue lookup imports: %w", err)
	}
	defer rs.Close()
	var ids []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan overdue import: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("overdue lookup imports: %w", err)
	}
	return ids, nil
}

// OptOut records, in the unit of work of ctx, that an import was uploaded
// with lookups off: its rows are never looked up or kept waiting.
func (s *LookupImports) OptOut(ctx context.Context, importID string) error {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return fmt.Errorf("lookup option of %s: %w", importID, err)
	}
	if _, err := tx.ExecContext(ctx, s.db.Dialect.Rebind(s.db.Dialect.InsertIgnore("lookup_optouts", []string{"import_id"}, 1)),
		importID); err != nil {
		return fmt.Errorf("lookup option of %s: %w", importID, err)
	}
	return nil
}

// SkipWaiters ends the wait of every row of an import still waiting for a
// lookup, in the unit of work of ctx: each gets lk as its `lookup`. It
// returns the count of rows that stopped waiting (Kind ProjectedLookups;
// the caller sets Key), or nil when none waited.
func (l *Lookups) SkipWaiters(ctx context.Context, importID string, lk domain.Lookup) (*domain.JobProjected, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("skip lookups of %s: %w", importID, err)
	}
	js, err := json.Marshal(lk)
	if err != nil {
		return nil, fmt.Errorf("encode lookup: %w", err)
	}
	ws, err := l.lockWaiters(ctx, tx, `import_id = ?`, []any{importID})
	if err != nil || len(ws) == 0 {
		return nil, err
	}
	data := make([][]byte, len(ws))
	for i := range data {
		data[i] = js
	}
	t := tally{}
	if err := l.finishWaiters(ctx, tx, ws, data, t); err != nil {
		return nil, err
	}
	out := t.projected()
	return &out[0], nil
}

// Load reads and locks an import with its lookup state, in the unit of
// work of ctx (the deadline watchdog checks the domain rule on it).
func (s *LookupImports) Load(ctx context.Context, id string) (domain.Import, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return domain.Import{}, fmt.Errorf("load import %s: %w", id, err)
	}
	im, err := scanImport(tx.QueryRowContext(ctx, s.db.Dialect.Rebind(
		`SELECT `+importColumns+` FROM imports WHERE id = ?`+s.db.Dialect.ForUpdate()), id))
	if err != nil {
		return domain.Import{}, fmt.Errorf("load import %s: %w", id, err)
	}
	st, err := s.load(ctx, tx, id)
	if err != nil {
		return domain.Import{}, err
	}
	im.Counts.Awaiting, im.ValidatedAt = st.awaiting, st.validatedAt
	return im, nil
}
