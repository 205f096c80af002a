package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// ErrStreamGap is returned when an event arrives before the one preceding
// it in its stream; the message is retried until the gap is filled.
var ErrStreamGap = errors.New("event stream gap")

// Numbers projects recorded per-number events into the results of each
// import, the per-number projection and the per-number event streams.
type Numbers struct {
	db *storage.DB
}

// NewNumbers returns the number projections of db.
func NewNumbers(db *storage.DB) *Numbers { return &Numbers{db: db} }

// projectBatch rows go into one multi-row INSERT.
const projectBatch = 200

// Project applies one NumbersRecorded message in the unit of work of ctx and
// returns the counts of its rows. The caller makes it run once per job.
func (n *Numbers) Project(ctx context.Context, m domain.NumbersRecorded) (domain.Counts, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return domain.Counts{}, fmt.Errorf("project job %d of %s: %w", m.Job, m.ImportID, err)
	}
	p := projector{ctx: ctx, tx: tx, d: n.db.Dialect, tenant: m.Tenant, importID: m.ImportID}
	if err := p.prepare(); err != nil {
		return domain.Counts{}, err
	}
	defer p.close()
	var counts domain.Counts
	results := make([]any, 0, projectBatch*4)
	events := make([]any, 0, projectBatch*7)
	flush := func() error {
		if err := p.insertMany("results", "(import_id, row_num, e164, data)", 4, results); err != nil {
			return err
		}
		results = results[:0]
		if err := p.insertMany("number_events", "(stream_id, version, id, type, occurred_at, import_id, data)", 7, events); err != nil {
			return err
		}
		events = events[:0]
		return nil
	}
	for _, ev := range m.Events {
		if ev.Type != domain.EventNumberValidated {
			return counts, fmt.Errorf("project %s: unexpected event type %q: %w", ev.ID, ev.Type, domain.ErrPermanent)
		}
		var v domain.NumberValidated
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			return counts, fmt.Errorf("project %s: %w: %w", ev.ID, domain.ErrPermanent, err)
		}
		c := domain.OutcomeOf(v)
		if v.E164 != "" {
			dup, err := p.seenInImport(v.E164, v.Row)
			if err != nil {
				return counts, err
			}
			if dup {
				c.Duplicates = 1
			}
		}
		if ev.Stream.IsNumberStream() {
			if err := p.applyToNumber(ev, v); err != nil {
				return counts, err
			}
		}
		counts = counts.Add(c)
		results = append(results, m.ImportID, v.Row, v.E164, string(ev.Data))
		events = append(events, string(ev.Stream), ev.Version, ev.ID, ev.Type, formatTime(ev.OccurredAt), ev.ImportID, string(ev.Data))
		if len(results) == cap(results) {
			if err := flush(); err != nil {
				return counts, err
			}
		}
	}
	return counts, flush()
}

// projector is the state of one Project call.
type projector struct {
	ctx      context.Context
	tx       *sql.Tx
	d        storage.Dialect
	tenant   string
	importID string

	seen, version, insertNumber, updateNumber, linkImport *sql.Stmt
}

func (p *projector) prepare() error {
	stmts := []struct {
		dst **sql.Stmt
		q   string
	}{
		{&p.seen, `INSERT INTO import_numbers (import_id, e164, first_row, seen) VALUES (?, ?, ?, 1)
			ON CONFLICT (import_id, e164) DO UPDATE SET seen = import_numbers.seen + 1,
			first_row = MIN(import_numbers.first_row, excluded.first_row) RETURNING seen`},
		{&p.version, `SELECT version FROM numbers WHERE tenant = ? AND e164 = ?`},
		{&p.insertNumber, `INSERT INTO numbers (tenant, e164, version, first_seen, last_seen, state) VALUES (?, ?, ?, ?, ?, ?)`},
		{&p.updateNumber, `UPDATE numbers SET version = ?, last_seen = ?, state = ? WHERE tenant = ? AND e164 = ? AND version = ?`},
		{&p.linkImport, `INSERT INTO number_imports (tenant, e164, import_id, first_seen) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`},
	}
	for _, s := range stmts {
		st, err := p.tx.PrepareContext(p.ctx, p.d.Rebind(s.q))
		if err != nil {
			p.close()
			return fmt.Errorf("prepare projection statement: %w", err)
		}
		*s.dst = st
	}
	return nil
}

func (p *projector) close() {
	for _, st := range []*sql.Stmt{p.seen, p.version, p.insertNumber, p.updateNumber, p.linkImport} {
		if st != nil {
			_ = st.Close()
		}
	}
}

// seenInImport counts e164 in this import and reports whether it had been
// seen before (in any order of jobs, the sum of these is rows − distinct).
func (p *projector) seenInImport(e164 string, row int) (bool, error) {
	var seen int
	if err := p.seen.QueryRowContext(p.ctx, p.importID, e164, row).Scan(&seen); err != nil {
		return false, fmt.Errorf("count %s in import %s: %w", e164, p.importID, err)
	}
	return seen > 1, nil
}

// applyToNumber moves the per-number projection to ev, skipping events it
// already holds and refusing to skip ahead of a missing one.
func (p *projector) applyToNumber(ev domain.NumberEvent, v domain.NumberValidated) error {
	var current int64
	err := p.version.QueryRowContext(p.ctx, p.tenant, v.E164).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("load number %s: %w", v.E164, err)
	}
	switch {
	case ev.Version <= current:
		return nil // already applied
	case ev.Version > current+1:
		return fmt.Errorf("%w: %s at version %d, event %s has version %d", ErrStreamGap, ev.Stream, current, ev.ID, ev.Version)
	}
	at := formatTime(ev.OccurredAt)
	state, err := json.Marshal(v.Result)
	if err != nil {
		return fmt.Errorf("encode number state %s: %w", v.E164, err)
	}
	if current == 0 {
		_, err = p.insertNumber.ExecContext(p.ctx, p.tenant, v.E164, ev.Version, at, at, string(state))
	} else {
		_, err = p.updateNumber.ExecContext(p.ctx, ev.Version, at, string(state), p.tenant, v.E164, current)
	}
	if err != nil {
		return fmt.Errorf("save number %s: %w", v.E164, err)
	}
	if _, err := p.linkImport.ExecContext(p.ctx, p.tenant, v.E164, ev.ImportID, at); err != nil {
		return fmt.Errorf("link number %s to import %s: %w", v.E164, ev.ImportID, err)
	}
	return nil
}

// insertMany inserts rows of width columns, ignoring rows already present.
func (p *projector) insertMany(table, columns string, width int, args []any) error {
	if len(args) == 0 {
		return nil
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", width), ",") + "),"
	q := "INSERT INTO " + table + " " + columns + " VALUES " +
		strings.TrimSuffix(strings.Repeat(one, len(args)/width), ",") + " ON CONFLICT DO NOTHING"
	if _, err := p.tx.ExecContext(p.ctx, p.d.Rebind(q), args...); err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}
