package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/wirejson"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// lookupRow is a valid row of a projected job whose number gets a lookup.
type lookupRow struct {
	row    int
	repeat bool // repeats a number seen earlier in its import
	valid  bool
}

// callState is what a job's rows get from their number's call.
type callState struct {
	cached     []byte // the lookup JSON to serve at once, when fresh
	generation int64  // else the generation to wait for
}

// Enqueue gives the valid rows of a projected job their lookups, in the
// unit of work of ctx, after Numbers.Project: a row whose number has a
// fresh successful lookup gets it at once (cached); every other row waits
// for its number's call, which is requested unless it is pending already
// (so a number is never looked up twice within the TTL, across imports).
// It returns counts with the waiting rows moved into Awaiting. Rows of an
// import uploaded with lookups off are left alone.
func (l *Lookups) Enqueue(ctx context.Context, m domain.NumbersRecorded, counts domain.Counts) (domain.Counts, error) {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return counts, fmt.Errorf("enqueue lookups of job %d of %s: %w", m.Job, m.ImportID, err)
	}
	if counts.Valid == 0 {
		return counts, nil
	}
	off, err := l.optedOut(ctx, tx, m.ImportID)
	if err != nil || off {
		return counts, err
	}
	rows, err := l.lookupRows(ctx, tx, m)
	if err != nil || len(rows) == 0 {
		return counts, err
	}
	numbers := sortedKeys(rows)
	now := l.cfg.Now()
	var waiting, repeats int
	for start := 0; start < len(numbers); start += projectBatch {
		batch := numbers[start:min(start+projectBatch, len(numbers))]
		calls, err := l.requestCalls(ctx, tx, m.Tenant, batch, now)
		if err != nil {
			return counts, err
		}
		var waiters, cached []any
		for _, e := range batch {
			st := calls[e]
			for _, r := range rows[e] {
				if st.cached != nil {
					cached = append(cached, m.ImportID, r.row, string(st.cached))
					continue
				}
				waiters = append(waiters, m.ImportID, r.row, m.Tenant, e, st.generation, boolInt(r.repeat))
				waiting++
				if r.repeat {
					repeats++
				}
			}
		}
		p := projector{ctx: ctx, tx: tx, d: l.db.Dialect}
		if err := p.insertIgnore("result_lookups", []string{"import_id", "row_num", "data"}, cached); err != nil {
			return counts, err
		}
		if err := p.insertIgnore("lookup_waiters", []string{"import_id", "row_num", "tenant", "e164", "generation", "is_repeat"}, waiters); err != nil {
			return counts, err
		}
	}
	return counts.AwaitLookups(waiting, repeats)
}

// lookupRows returns the valid rows of m by number, each marked whether it
// repeats a number seen earlier in the import. The marks follow the
// projector's own rule (see markSeen): of a number's rows in this message,
// in message order, all but the first are repeats, and the first is one
// when the import had seen the number before; import_numbers already
// counts this message's rows (Project ran first in this unit of work).
func (l *Lookups) lookupRows(ctx context.Context, tx storage.Querier, m domain.NumbersRecorded) (map[string][]lookupRow, error) {
	parsed := map[string][]lookupRow{}
	valid := map[string]bool{}
	for _, ev := range m.Events {
		if ev.Type != domain.EventNumberValidated || !ev.Stream.IsNumberStream() {
			continue
		}
		var v domain.NumberValidated
		if err := wirejson.Unmarshal(ev.Data, &v); err != nil {
			return nil, fmt.Errorf("enqueue lookups: event %s: %w: %w", ev.ID, domain.ErrPermanent, err)
		}
		if v.E164 == "" {
			continue
		}
		ok := v.Valid && v.Reason == ""
		parsed[v.E164] = append(parsed[v.E164], lookupRow{row: v.Row, valid: ok})
		if ok {
			valid[v.E164] = true
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	numbers := sortedKeys(valid)
	out := make(map[string][]lookupRow, len(valid))
	for start := 0; start < len(numbers); start += projectBatch {
		batch := numbers[start:min(start+projectBatch, len(numbers))]
		seen, err := l.seenInImport(ctx, tx, m.ImportID, batch)
		if err != nil {
			return nil, err
		}
		for _, e := range batch {
			rows := parsed[e]
			before := seen[e] - len(rows)
			for k, r := range rows {
				if r.valid {
					r.repeat = before+k > 0
					out[e] = append(out[e], r)
				}
			}
		}
	}
	return out, nil
}

// seenInImport returns how often the import has seen each of numbers.
func (l *Lookups) seenInImport(ctx context.Context, tx storage.Querier, importID string, numbers []string) (map[string]int, error) {
	isNumber, in := storage.OneOf(l.db.Dialect, "e164", numbers)
	rs, err := tx.QueryContext(ctx, l.db.Dialect.Rebind(`SELECT e164, seen FROM import_numbers
		WHERE import_id = ? AND `+isNumber), append([]any{importID}, in...)...)
	if err != nil {
		return nil, fmt.Errorf("read numbers of import %s: %w", importID, err)
	}
	defer rs.Close()
	seen := make(map[string]int, len(numbers))
	for rs.Next() {
		var (
			e string
			n int
		)
		if err := rs.Scan(&e, &n); err != nil {
			return nil, fmt.Errorf("scan number of import %s: %w", importID, err)
		}
		seen[e] = n
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read numbers of import %s: %w", importID, err)
	}
	return seen, nil
}

// optedOut reports whether the import was uploaded with lookups off.
func (l *Lookups) optedOut(ctx context.Context, tx storage.Querier, importID string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, l.db.Dialect.Rebind(`SELECT COUNT(*) FROM lookup_optouts WHERE import_id = ?`),
		importID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("lookup option of import %s: %w", importID, err)
	}
	return n > 0, nil
}

// requestCalls makes sure each of at most projectBatch of a tenant's
// numbers (sorted) has a call that answers rows projected now: a fresh
// successful one, served from its stored result, or a pending one, created
// or requested again (a new generation) when the last one ended without a
// usable result. The call rows are locked first, so a worker recording an outcome or a lookup
// projector resolving waiters either finishes before this reads them or
// sees the waiters this unit of work adds.
func (l *Lookups) requestCalls(ctx context.Context, tx storage.Querier, tenant string, numbers []string, now time.Time) (map[string]callState, error) {
	d := l.db.Dialect
	p := projector{ctx: ctx, tx: tx, d: d, tenant: tenant}
	columns := []string{"tenant", "e164", "status", "generation", "outcome", "result",
		"done_at", "attempts", "due_at", "lease_until", "lease_token"}
	rs, err := p.lockOrAdd("lookup_calls", columns, func() []any {
		args := make([]any, 0, len(columns)*len(numbers))
		for _, e := range numbers {
			args = append(args, tenant, e, callPending, 1, "", "", 0, 0, millis(now), 0, "")
		}
		return args
	}, true, numbers, "e164, status, generation, result, done_at")
	if err != nil {
		return nil, fmt.Errorf("lock lookup calls: %w", err)
	}
	defer rs.Close()
	out := make(map[string]callState, len(numbers))
	var again []string
	for rs.Next() {
		var (
			e, status, result string
			gen, doneAt       int64
		)
		if err := rs.Scan(&e, &status, &gen, &result, &doneAt); err != nil {
			return nil, fmt.Errorf("scan lookup call: %w", err)
		}
		st := callState{generation: gen}
		if status == callDone {
			var lk domain.Lookup
			if err := json.Unmarshal([]byte(result), &lk); err != nil {
				return nil, fmt.Errorf("stored lookup of %s: %w", e, err)
			}
			if lk.FreshFor(time.UnixMilli(doneAt), now, l.cfg.TTL) {
				if st.cached, err = json.Marshal(lk.AsCached()); err != nil {
					return nil, fmt.Errorf("cached lookup of %s: %w", e, err)
				}
			} else {
				st.generation++
				again = append(again, e)
			}
		}
		out[e] = st
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read lookup calls: %w", err)
	}
	if len(out) != len(numbers) {
		return nil, fmt.Errorf("locked %d lookup calls, want %d", len(out), len(numbers))
	}
	if len(again) == 0 {
		return out, nil
	}
	isAgain, in := storage.OneOf(d, "e164", again)
	_, err = tx.ExecContext(ctx, d.Rebind(`UPDATE lookup_calls SET status = ?, generation = generation + 1,
		attempts = 0, due_at = ?, lease_until = 0, lease_token = ''
		WHERE tenant = ? AND status = ? AND `+isAgain), append([]any{callPending, millis(now), tenant, callDone}, in...)...)
	if err != nil {
		return nil, fmt.Errorf("request lookups again: %w", err)
	}
	return out, nil
}
