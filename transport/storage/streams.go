package storage

import (
	"context"
	"fmt"

	"github.com/phonepipe/phonepipe/domain"
)

// StreamHeads hands out the next version of per-number streams. A version is
// taken inside the validator's unit of work, so it is used iff the events
// carrying it are published.
type StreamHeads struct {
	db *DB
}

// NewStreamHeads returns the stream-head store of db.
func NewStreamHeads(db *DB) *StreamHeads { return &StreamHeads{db: db} }

// Next increments the head of each stream (in order, a stream may repeat)
// and returns the new versions.
func (s *StreamHeads) Next(ctx context.Context, streams []domain.StreamID) ([]int64, error) {
	tx, err := MustTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("next stream versions: %w", err)
	}
	q := `INSERT INTO stream_heads (stream_id, version) VALUES (?, 1)
		ON CONFLICT (stream_id) DO UPDATE SET version = stream_heads.version + 1
		RETURNING version`
	stmt, err := tx.PrepareContext(ctx, s.db.Dialect.Rebind(q))
	if err != nil {
		return nil, fmt.Errorf("prepare stream head update: %w", err)
	}
	defer stmt.Close()
	out := make([]int64, len(streams))
	for i, id := range streams {
		if err := stmt.QueryRowContext(ctx, string(id)).Scan(&out[i]); err != nil {
			return nil, fmt.Errorf("advance stream %s: %w", id, err)
		}
	}
	return out, nil
}
