package storage

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

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

// headsBatch streams are advanced by one statement.
const headsBatch = 500

// Next increments the head of each stream (in order, a stream may repeat)
// and returns the new versions.
//
// Each distinct stream is advanced once, by the number of times it occurs,
// and the streams are locked in sorted order: two validators sharing
// numbers wait for each other instead of deadlocking, and the one that
// locks a stream first gets the lower versions of every stream they share.
func (s *StreamHeads) Next(ctx context.Context, streams []domain.StreamID) ([]int64, error) {
	tx, err := MustTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("next stream versions: %w", err)
	}
	counts := make(map[domain.StreamID]int64, len(streams))
	for _, id := range streams {
		counts[id]++
	}
	ids := make([]domain.StreamID, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	heads := make(map[domain.StreamID]int64, len(ids))
	for start := 0; start < len(ids); start += headsBatch {
		if err := s.advance(ctx, tx, ids[start:min(start+headsBatch, len(ids))], counts, heads); err != nil {
			return nil, err
		}
	}
	out := make([]int64, len(streams))
	taken := make(map[domain.StreamID]int64, len(ids))
	for i, id := range streams {
		out[i] = heads[id] - counts[id] + 1 + taken[id]
		taken[id]++
	}
	return out, nil
}

// advance adds counts[id] to the head of each of ids (sorted) and records
// the new heads.
func (s *StreamHeads) advance(ctx context.Context, tx Querier, ids []domain.StreamID,
	counts map[domain.StreamID]int64, heads map[domain.StreamID]int64) error {
	d := s.db.Dialect
	args := make([]any, 0, 2*len(ids))
	for _, id := range ids {
		args = append(args, string(id), counts[id])
	}
	q := `INSERT INTO stream_heads (stream_id, version) VALUES ` + Values(len(ids), 2) + ` ` +
		d.OnConflictUpdate("stream_id") + ` version = stream_heads.version + ` + d.Excluded("version")
	var (
		rows *sql.Rows
		err  error
	)
	if d == MySQL {
		// No RETURNING: the rows are ours (locked) now, so a locking read
		// sees exactly what this transaction wrote.
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("advance %d streams: %w", len(ids), err)
		}
		in := make([]any, len(ids))
		for i, id := range ids {
			in[i] = string(id)
		}
		rows, err = tx.QueryContext(ctx, `SELECT stream_id, version FROM stream_heads WHERE stream_id IN (`+
			Placeholders(len(ids))+`) FOR UPDATE`, in...)
	} else {
		rows, err = tx.QueryContext(ctx, d.Rebind(q+` RETURNING stream_id, version`), args...)
	}
	if err != nil {
		return fmt.Errorf("advance %d streams: %w", len(ids), err)
	}
	return readHeads(rows, heads, len(ids))
}

// readHeads reads (stream_id, version) rows into heads and checks that want
// rows came back.
func readHeads(rows *sql.Rows, heads map[domain.StreamID]int64, want int) error {
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			id string
			v  int64
		)
		if err := rows.Scan(&id, &v); err != nil {
			return fmt.Errorf("scan stream head: %w", err)
		}
		heads[domain.StreamID(id)] = v
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read stream heads: %w", err)
	}
	if n != want {
		return fmt.Errorf("advanced %d stream heads, want %d", n, want)
	}
	return nil
}
