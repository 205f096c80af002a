package projections

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// numberHead is the projected state of one number as this message finds it.
type numberHead struct {
	version   int64
	firstSeen string
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
	heads, err := p.lockNumbers(numbers)
	if err != nil {
		return err
	}
	parked, err := p.loadParked(streams)
	if err != nil {
		return err
	}
	var w streamWrites
	for i, s := range streams {
		if err := w.plan(p, numbers[i], heads[numbers[i]], byStream[s], parked[s]); err != nil {
			return err
		}
	}
	return w.write(p)
}

// lockNumbers makes sure every number has a row (a placeholder at version 0
// when it has none yet), locks the rows in sorted order and returns their
// heads. The lock serializes projectors of the same number, so an event
// parked by one is seen by the next. On SQLite the transaction already
// holds the only write lock, so no placeholder is needed: a number without
// a row is at version 0, and saving its state inserts the row.
func (p *projector) lockNumbers(numbers []string) (map[string]numberHead, error) {
	if p.d != storage.SQLite {
		args := make([]any, 0, 6*len(numbers))
		for _, e := range numbers {
			args = append(args, p.tenant, e, 0, "", "", "{}")
		}
		if err := p.insertIgnore("numbers", []string{"tenant", "e164", "version", "first_seen", "last_seen", "state"}, args); err != nil {
			return nil, err
		}
	}
	rows, err := p.tx.QueryContext(p.ctx, p.d.Rebind(`SELECT e164, version, first_seen FROM numbers WHERE tenant = ? AND e164 IN (`+
		storage.Placeholders(len(numbers))+`) ORDER BY e164`+p.d.ForUpdate()), append([]any{p.tenant}, stringArgs(numbers)...)...)
	if err != nil {
		return nil, fmt.Errorf("lock numbers: %w", err)
	}
	defer rows.Close()
	heads := make(map[string]numberHead, len(numbers))
	for rows.Next() {
		var (
			e string
			h numberHead
		)
		if err := rows.Scan(&e, &h.version, &h.firstSeen); err != nil {
			return nil, fmt.Errorf("scan number: %w", err)
		}
		heads[e] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read numbers: %w", err)
	}
	return heads, nil
}

// loadParked returns the parked events of streams.
func (p *projector) loadParked(streams []domain.StreamID) (map[domain.StreamID][]recorded, error) {
	in := make([]any, len(streams))
	for i, s := range streams {
		in[i] = string(s)
	}
	rows, err := p.tx.QueryContext(p.ctx, p.d.Rebind(`SELECT stream_id, version, id, type, occurred_at, import_id, data
		FROM number_events_parked WHERE stream_id IN (`+storage.Placeholders(len(streams))+`)`), in...)
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
	events, numbers, park []any
	unpark                       []unpark
	// versions moves numbers whose applied events were all lookup
	// events: (version, tenant, e164) triples.
	versions []any
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
func (w *streamWrites) plan(p *projector, e164 string, head numberHead, fresh, parked []recorded) error {
	isParked := make(map[int64]bool, len(parked))
	for _, r := range parked {
		isParked[r.ev.Version] = true
	}
	all := slices.Concat(parked, fresh)
	slices.SortStableFunc(all, func(a, b recorded) int { return cmp.Compare(a.ev.Version, b.ev.Version) })
	next := head.version + 1
	var last *recorded
	firstSeen := head.firstSeen
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
			if domain.IsLookupEvent(r.ev.Type) {
				continue // takes a version; state, sightings and imports stay
			}
			last = r
			at := formatTime(r.ev.OccurredAt)
			if head.version == 0 && firstSeen == "" {
				firstSeen = at
			}
		case !isParked[r.ev.Version]:
			w.park = append(w.park, eventArgs(r.ev)...)
		}
	}
	if unparkThrough > 0 {
		w.unpark = append(w.unpark, unpark{stream: all[0].ev.Stream, through: unparkThrough})
	}
	if last == nil {
		if next-1 > head.version {
			w.versions = append(w.versions, next-1, p.tenant, e164)
		}
		return nil
	}
	state, err := json.Marshal(last.v.Result)
	if err != nil {
		return fmt.Errorf("encode number state %s: %w", e164, err)
	}
	w.numbers = append(w.numbers, p.tenant, e164, next-1, firstSeen, formatTime(last.ev.OccurredAt), string(state))
	return nil
}

// write runs the collected writes.
func (w *streamWrites) write(p *projector) error {
	if err := p.insertIgnore("number_events", eventColumns, w.events); err != nil {
		return err
	}
	if err := p.insertIgnore("number_events_parked", eventColumns, w.park); err != nil {
		return err
	}
	for i := 0; i < len(w.versions); i += 3 {
		if _, err := p.tx.ExecContext(p.ctx, p.d.Rebind(`UPDATE numbers SET version = ? WHERE tenant = ? AND e164 = ?`),
			w.versions[i:i+3]...); err != nil {
			return fmt.Errorf("advance number version: %w", err)
		}
	}
	for _, u := range w.unpark {
		if _, err := p.tx.ExecContext(p.ctx, p.d.Rebind(`DELETE FROM number_events_parked WHERE stream_id = ? AND version <= ?`),
			string(u.stream), u.through); err != nil {
			return fmt.Errorf("unpark events of %s: %w", u.stream, err)
		}
	}
	const width = 6
	for start := 0; start < len(w.numbers); start += projectBatch * width {
		chunk := w.numbers[start:min(start+projectBatch*width, len(w.numbers))]
		q := `INSERT INTO numbers (tenant, e164, version, first_seen, last_seen, state) VALUES ` +
			storage.Values(len(chunk)/width, width) + ` ` + p.d.OnConflictUpdate("tenant", "e164") +
			` version = ` + p.d.Excluded("version") + `, first_seen = ` + p.d.Excluded("first_seen") +
			`, last_seen = ` + p.d.Excluded("last_seen") + `, state = ` + p.d.Excluded("state")
		if _, err := p.tx.ExecContext(p.ctx, p.d.Rebind(q), chunk...); err != nil {
			return fmt.Errorf("save numbers: %w", err)
		}
	}
	return nil
}
