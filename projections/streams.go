package projections

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// numberHead is the projected state of one number as this message finds
// it: the version up to which its stream has been applied.
type numberHead struct {
	version int64
}

// applyStreams moves the per-number projection and the served event
// streams forward with the events of one message. Events of row streams
// (inputs that did not parse) are single events and go straight to their
// stream. Numbers are handled in sorted order, batch by batch, so
// concurrent projectors lock them in the same order.
func (p *projector) applyStreams(rows []recorded) error {
	byStream := map[domain.StreamID][]recorded{}
	var single []any
	for _, r := range rows {
		if r.ev.Stream.IsNumberStream() {
			byStream[r.ev.Stream] = append(byStream[r.ev.Stream], r)
			continue
		}
		single = append(single, eventArgs(r.ev)...)
	}
	if err := p.insertIgnore("number_events", eventColumns, single); err != nil {
		return err
	}
	streams := make([]domain.StreamID, 0, len(byStream))
	for s := range byStream {
		streams = append(streams, s)
	}
	slices.Sort(streams)
	for start := 0; start < len(streams); start += projectBatch {
		if err := p.applyBatch(streams[start:min(start+projectBatch, len(streams))], byStream); err != nil {
			return err
		}
	}
	return nil
}

// applyBatch applies the events of a batch of number streams.
func (p *projector) applyBatch(streams []domain.StreamID, byStream map[domain.StreamID][]recorded) error {
	numbers := make([]string, len(streams))
	for i, s := range streams {
		numbers[i] = byStream[s][0].v.E164
	}
	heads, err := p.lockNumbers(streams, numbers)
	if err != nil {
		return err
	}
	parked, err := p.loadParked(streams)
	if err != nil {
		return err
	}
	var w streamWrites
	for i, s := range streams {
		w.plan(p, numbers[i], heads[s], byStream[s], parked[s])
	}
	return w.write(p)
}

// lockNumbers returns the heads of streams, by stream (numbers are their
// E.164 numbers, in the same order), locked against other projectors of
// the same numbers: the lock serializes them, so an event parked by one is
// seen by the next.
//
// On SQLite the transaction already holds the only write lock, and a
// stream's head is simply its highest version in number_events (which
// holds only applied events: see plan). On the server databases the
// numbers table keeps each number's head in a row that a projector locks
// (a placeholder at version 0 inserted for a new number) and moves: a
// concurrent projector of the same number waits for the row, and then
// reads the moved head (MySQL) or fails to serialize and runs again
// (PostgreSQL's REPEATABLE READ), where a head read from number_events
// would come from its snapshot and be stale.
func (p *projector) lockNumbers(streams []domain.StreamID, numbers []string) (map[domain.StreamID]numberHead, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if p.d == storage.SQLite {
		rows, err = p.tx.QueryContext(p.ctx, `SELECT stream_id, MAX(version) FROM number_events WHERE stream_id IN (`+
			storage.Placeholders(len(streams))+`) GROUP BY stream_id`, stringArgs(streamStrings(streams))...)
	} else {
		rows, err = p.lockOrAdd("numbers", numberColumns, func() []any {
			args := make([]any, 0, len(numberColumns)*len(numbers))
			for _, e := range numbers {
				args = append(args, p.tenant, e, 0, "", "", "{}")
			}
			return args
		}, true, numbers, "e164, version")
	}
	if err != nil {
		return nil, fmt.Errorf("lock numbers: %w", err)
	}
	defer rows.Close()
	heads := make(map[domain.StreamID]numberHead, len(numbers))
	for rows.Next() {
		var (
			key string
			h   numberHead
		)
		if err := rows.Scan(&key, &h.version); err != nil {
			return nil, fmt.Errorf("scan number: %w", err)
		}
		if p.d != storage.SQLite {
			key = string(domain.NumberStream(p.tenant, key))
		}
		heads[domain.StreamID(key)] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read numbers: %w", err)
	}
	return heads, nil
}

// numberColumns are the columns of numbers. Only the head (version) is
// kept up to date; first_seen, last_seen and state are what the table held
// before the number read model was derived from the stream (see
// Numbers.Number), written as placeholders so that existing databases need
// no migration.
var numberColumns = []string{"tenant", "e164", "version", "first_seen", "last_seen", "state"}

func streamStrings(streams []domain.StreamID) []string {
	out := make([]string, len(streams))
	for i, s := range streams {
		out[i] = string(s)
	}
	return out
}

// loadParked returns the parked events of streams.
func (p *projector) loadParked(streams []domain.StreamID) (map[domain.StreamID][]recorded, error) {
	isStream, in := storage.OneOf(p.d, "stream_id", streamStrings(streams))
	rows, err := p.tx.QueryContext(p.ctx, p.d.Rebind(`SELECT stream_id, version, id, type, occurred_at, import_id, data
		FROM number_events_parked WHERE `+isStream), in...)
	if err != nil {
		return nil, fmt.Errorf("load parked events: %w", err)
	}
	defer rows.Close()
	out := map[domain.StreamID][]recorded{}
	for rows.Next() {
		var (
			ev       domain.NumberEvent
			stream   string
			at, data string
		)
		if err := rows.Scan(&stream, &ev.Version, &ev.ID, &ev.Type, &at, &ev.ImportID, &data); err != nil {
			return nil, fmt.Errorf("scan parked event: %w", err)
		}
		ev.Stream = domain.StreamID(stream)
		ev.Data = json.RawMessage(data)
		if ev.OccurredAt, err = parseTime(at); err != nil {
			return nil, err
		}
		r, err := decode(ev)
		if err != nil {
			return nil, err
		}
		out[ev.Stream] = append(out[ev.Stream], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read parked events: %w", err)
	}
	return out, nil
}

// streamWrites collects the writes of a batch of streams.
type streamWrites struct {
	events, park []any
	unpark       []unpark
	// heads moves the heads of numbers on the server databases (see
	// lockNumbers): rows of numberColumns.
	heads []any
}

// unpark deletes a stream's parked events up to a version.
type unpark struct {
	stream  domain.StreamID
	through int64
}

// plan works out what the events of one stream (from the message and
// parked earlier) do: those that continue the stream are applied in
// version order, those at or below its head are dropped (already applied),
// and the message's events beyond a missing version are parked.
func (w *streamWrites) plan(p *projector, e164 string, head numberHead, fresh, parked []recorded) {
	isParked := make(map[int64]bool, len(parked))
	for _, r := range parked {
		isParked[r.ev.Version] = true
	}
	all := slices.Concat(parked, fresh)
	slices.SortStableFunc(all, func(a, b recorded) int { return cmp.Compare(a.ev.Version, b.ev.Version) })
	next := head.version + 1
	unparkThrough := int64(0)
	for i := range all {
		r := &all[i]
		switch {
		case r.ev.Version < next:
			continue // applied before, or a twin of the one just applied
		case r.ev.Version == next:
			next++
			w.events = append(w.events, eventArgs(r.ev)...)
			if isParked[r.ev.Version] {
				unparkThrough = r.ev.Version
			}
		case !isParked[r.ev.Version]:
			w.park = append(w.park, eventArgs(r.ev)...)
		}
	}
	if unparkThrough > 0 {
		w.unpark = append(w.unpark, unpark{stream: all[0].ev.Stream, through: unparkThrough})
	}
	if p.d != storage.SQLite && next-1 > head.version {
		w.heads = append(w.heads, p.tenant, e164, next-1, "", "", "{}")
	}
}

// write runs the collected writes.
func (w *streamWrites) write(p *projector) error {
	if err := p.insertIgnore("number_events", eventColumns, w.events); err != nil {
		return err
	}
	if err := p.insertIgnore("number_events_parked", eventColumns, w.park); err != nil {
		return err
	}
	for _, u := range w.unpark {
		if _, err := p.tx.ExecContext(p.ctx, p.d.Rebind(`DELETE FROM number_events_parked WHERE stream_id = ? AND version <= ?`),
			string(u.stream), u.through); err != nil {
			return fmt.Errorf("unpark events of %s: %w", u.stream, err)
		}
	}
	width := len(numberColumns)
	for start := 0; start < len(w.heads); start += projectBatch * width {
		chunk := w.heads[start:min(start+projectBatch*width, len(w.heads))]
		q := `INSERT INTO numbers (` + strings.Join(numberColumns, ", ") + `) VALUES ` +
			storage.Values(len(chunk)/width, width) + ` ` + p.d.OnConflictUpdate("tenant", "e164") +
			` version = ` + p.d.Excluded("version")
		if _, err := p.tx.ExecContext(p.ctx, p.d.Rebind(q), chunk...); err != nil {
			return fmt.Errorf("move number heads: %w", err)
		}
	}
	return nil
}
