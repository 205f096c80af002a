package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/phonepipe/phonepipe/domain"
)

// Open lists up to limit imports, in id order after after, that are not
// completed (accepted or processing) and were accepted at or before
// acceptedBefore: the candidates of the import deadline watchdog, found
// through the imports_open index. It reads committed state.
func (s *Imports) Open(ctx context.Context, acceptedBefore time.Time, after string, limit int) ([]string, error) {
	rs, err := s.db.Read.QueryContext(ctx, s.db.Dialect.Rebind(`SELECT id FROM imports
		WHERE status IN (?, ?) AND created_at <= ? AND id > ? ORDER BY id LIMIT ?`),
		string(domain.StatusAccepted), string(domain.StatusProcessing), formatTime(acceptedBefore), after, limit)
	if err != nil {
		return nil, fmt.Errorf("open imports: %w", err)
	}
	defer rs.Close()
	var ids []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan open import: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("open imports: %w", err)
	}
	return ids, nil
}

// Peek reads an import, whatever its tenant, in the unit of work of ctx
// (else from committed state) without locking it.
func (s *Imports) Peek(ctx context.Context, id string) (domain.Import, error) {
	im, err := scanImport(s.db.Reader(ctx).QueryRowContext(ctx, s.db.Dialect.Rebind(
		`SELECT `+importColumns+` FROM imports WHERE id = ?`), id))
	if err != nil {
		return domain.Import{}, fmt.Errorf("read import %s: %w", id, err)
	}
	return im, nil
}
