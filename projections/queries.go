package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/wirejson"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// ResultRow is one row of GET /v1/imports/{id}/results.
type ResultRow struct {
	domain.NumberValidated
	DuplicateOf int `json:"duplicate_of,omitempty"`
	// Lookup is the third-party lookup of the row's number (a
	// domain.Lookup), when the lookup stage gave it one.
	Lookup json.RawMessage `json:"lookup,omitempty"`
}

// Results returns the result rows of an import in input order.
type Results struct {
	db *storage.DB
}

// NewResults returns the results read model of db.
func NewResults(db *storage.DB) *Results { return &Results{db: db} }

// Each calls fn for every result row of an import in row order.
func (r *Results) Each(ctx context.Context, importID string, fn func(ResultRow) error) error {
	rows, err := r.db.Read.QueryContext(ctx, r.db.Dialect.Rebind(`
		SELECT r.row_num, r.data, COALESCE(n.first_row, 0), COALESCE(l.data, '')
		FROM results r LEFT JOIN import_numbers n ON n.import_id = r.import_id AND n.e164 = r.e164 AND r.e164 <> ''
		LEFT JOIN result_lookups l ON l.import_id = r.import_id AND l.row_num = r.row_num
		WHERE r.import_id = ? ORDER BY r.row_num`), importID)
	if err != nil {
		return fmt.Errorf("query results of %s: %w", importID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			row, first int
			data, lk   []byte
			out        ResultRow
		)
		if err := rows.Scan(&row, &data, &first, &lk); err != nil {
			return fmt.Errorf("scan result of %s: %w", importID, err)
		}
		if err := wirejson.Unmarshal(data, &out.NumberValidated); err != nil {
			return fmt.Errorf("decode result %d of %s: %w", row, importID, err)
		}
		if first > 0 && first < row {
			out.DuplicateOf = first
		}
		if len(lk) > 0 {
			out.Lookup = lk
		}
		if err := fn(out); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read results of %s: %w", importID, err)
	}
	return nil
}

// Number is the per-number projection served by GET /v1/numbers/{e164}.
type Number struct {
	E164      string          `json:"e164"`
	Version   int64           `json:"version"`
	FirstSeen time.Time       `json:"first_seen"`
	LastSeen  time.Time       `json:"last_seen"`
	Imports   []string        `json:"imports"`
	Latest    json.RawMessage `json:"latest"`
	// LastLookup is the number's last successful third-party lookup (a
	// domain.Lookup), when the lookup stage made one.
	LastLookup json.RawMessage `json:"last_lookup,omitempty"`
}

// StoredEvent is one event of a per-number stream as served by the API.
type StoredEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Version    int64           `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	ImportID   string          `json:"import_id"`
	Data       json.RawMessage `json:"data"`
}

// Number returns a tenant's number, or domain.ErrNotFound. It is read
// from the number's own stream (ranges of number_events' key): the version
// is the stream's head, the latest state and last_seen come from its
// newest number.validated event, first_seen from its oldest, and the
// imports are those its number.validated events came from, in the order
// they first did. The projector keeps no copy of any of it.
func (n *Numbers) Number(ctx context.Context, tenant, e164 string) (Number, error) {
	stream := string(domain.NumberStream(tenant, e164))
	out := Number{E164: e164}
	var (
		first, last string
		latest      []byte
		lastLookup  string
	)
	err := n.db.Read.QueryRowContext(ctx, n.db.Dialect.Rebind(
		`SELECT (SELECT MAX(version) FROM number_events WHERE stream_id = ?),
		 (SELECT occurred_at FROM number_events WHERE stream_id = ? AND type = ? ORDER BY version LIMIT 1),
		 e.occurred_at, e.data,
		 COALESCE((SELECT result FROM number_lookups WHERE tenant = ? AND e164 = ?), '')
		 FROM number_events e WHERE e.stream_id = ? AND e.type = ? ORDER BY e.version DESC LIMIT 1`),
		stream, stream, domain.EventNumberValidated, tenant, e164, stream, domain.EventNumberValidated).
		Scan(&out.Version, &first, &last, &latest, &lastLookup)
	if errors.Is(err, sql.ErrNoRows) {
		return Number{}, domain.ErrNotFound
	}
	if err != nil {
		return Number{}, fmt.Errorf("get number %s: %w", e164, err)
	}
	var v domain.NumberValidated
	if err := json.Unmarshal(latest, &v); err != nil {
		return Number{}, fmt.Errorf("decode latest event of %s: %w", e164, err)
	}
	if out.Latest, err = json.Marshal(v.Result); err != nil {
		return Number{}, fmt.Errorf("encode state of %s: %w", e164, err)
	}
	if lastLookup != "" {
		out.LastLookup = json.RawMessage(lastLookup)
	}
	if out.FirstSeen, err = parseTime(first); err != nil {
		return Number{}, err
	}
	if out.LastSeen, err = parseTime(last); err != nil {
		return Number{}, err
	}
	rows, err := n.db.Read.QueryContext(ctx, n.db.Dialect.Rebind(
		`SELECT import_id FROM number_events WHERE stream_id = ? AND type = ?
		 GROUP BY import_id ORDER BY MIN(version)`), stream, domain.EventNumberValidated)
	if err != nil {
		return Number{}, fmt.Errorf("get imports of %s: %w", e164, err)
	}
	defer rows.Close()
	out.Imports = []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return Number{}, fmt.Errorf("scan import of %s: %w", e164, err)
		}
		out.Imports = append(out.Imports, id)
	}
	return out, rows.Err()
}

// Events returns the events of a tenant's number stream ordered by version,
// or domain.ErrNotFound when the stream has none.
func (n *Numbers) Events(ctx context.Context, tenant, e164 string) ([]StoredEvent, error) {
	rows, err := n.db.Read.QueryContext(ctx, n.db.Dialect.Rebind(
		`SELECT id, type, version, occurred_at, import_id, data FROM number_events
		 WHERE stream_id = ? ORDER BY version`), string(domain.NumberStream(tenant, e164)))
	if err != nil {
		return nil, fmt.Errorf("get events of %s: %w", e164, err)
	}
	defer rows.Close()
	var out []StoredEvent
	for rows.Next() {
		var (
			ev   StoredEvent
			at   string
			data []byte
		)
		if err := rows.Scan(&ev.ID, &ev.Type, &ev.Version, &at, &ev.ImportID, &data); err != nil {
			return nil, fmt.Errorf("scan event of %s: %w", e164, err)
		}
		if ev.OccurredAt, err = parseTime(at); err != nil {
			return nil, err
		}
		ev.Data = data
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events of %s: %w", e164, err)
	}
	if len(out) == 0 {
		return nil, domain.ErrNotFound
	}
	return out, nil
}
