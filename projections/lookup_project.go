package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// recordedLookup is one lookup of a LookupsRecorded message, decoded.
type recordedLookup struct {
	tenant     string
	event      domain.NumberEvent
	data       domain.NumberLookedUp
	lookupJSON []byte // data.Lookup as the `lookup` field of a result row
}

// waiter is a row waiting for its number's lookup.
type waiter struct {
	importID, tenant, e164 string
	row                    int
	generation             int64
	repeat                 bool
}

// ProjectLookups applies one LookupsRecorded message in the unit of work
// of ctx: each lookup event is appended to its number's stream (keeping
// versions gapless), successful lookups become their numbers' last
// lookup, and every row that waited for one of these calls gets its
// `lookup` and stops waiting. It returns, per import, the count of rows
// that stopped waiting (Kind ProjectedLookups; the caller sets Key). The
// caller makes it run once per message.
func (l *Lookups) ProjectLookups(ctx context.Context, m domain.LookupsRecorded) ([]domain.JobProjected, error) {
	byTenant, err := applyLookupStreams(ctx, l.db, m)
	if err != nil {
		return nil, err
	}
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return nil, fmt.Errorf("project lookups %s: %w", m.Batch, err)
	}
	t := tally{}
	for _, tenant := range sortedKeys(byTenant) {
		if err := l.resolveNumbers(ctx, tx, tenant, byTenant[tenant], t); err != nil {
			return nil, err
		}
	}
	return t.projected(), nil
}

// decodeRecorded checks and decodes one recorded lookup.
func decodeRecorded(rl domain.RecordedLookup) (recordedLookup, error) {
	d, err := domain.DecodeLookupEvent(rl.Event)
	if err != nil {
		return recordedLookup{}, err
	}
	if rl.Tenant == "" || rl.Event.Stream != domain.NumberStream(rl.Tenant, d.E164) {
		return recordedLookup{}, fmt.Errorf("event %s of stream %s does not belong to %s of tenant %q: %w",
			rl.Event.ID, rl.Event.Stream, d.E164, rl.Tenant, domain.ErrPermanent)
	}
	js, err := json.Marshal(d.Lookup)
	if err != nil {
		return recordedLookup{}, fmt.Errorf("encode lookup of %s: %w", d.E164, err)
	}
	return recordedLookup{tenant: rl.Tenant, event: rl.Event, data: d, lookupJSON: js}, nil
}

// resolveNumbers gives the waiting rows of a tenant's looked-up numbers
// their lookups: each row waiting for the recorded generation of its
// number's call, or an earlier one. The calls are locked first, so a
// projector enqueuing rows for these numbers at the same time either
// commits its waiters before they are read here or sees the calls done.
func (l *Lookups) resolveNumbers(ctx context.Context, tx storage.Querier, tenant string, items []recordedLookup, t tally) error {
	best := map[string]recordedLookup{}
	for _, it := range items {
		if cur, ok := best[it.data.E164]; !ok || it.data.Generation > cur.data.Generation {
			best[it.data.E164] = it
		}
	}
	numbers := sortedKeys(best)
	d := l.db.Dialect
	for start := 0; start < len(numbers); start += projectBatch {
		batch := numbers[start:min(start+projectBatch, len(numbers))]
		isNumber, in := storage.OneOf(d, "e164", batch)
		in = append([]any{tenant}, in...)
		if err := drain(tx.QueryContext(ctx, d.Rebind(`SELECT e164 FROM lookup_calls WHERE tenant = ? AND `+isNumber+
			` ORDER BY e164`+d.ForUpdate()), in...)); err != nil {
			return fmt.Errorf("lock lookup calls: %w", err)
		}
		ws, err := l.lockWaiters(ctx, tx, `tenant = ? AND `+isNumber, in)
		if err != nil {
			return err
		}
		var done []waiter
		var data [][]byte
		for _, w := range ws {
			it := best[w.e164]
			if w.generation > it.data.Generation {
				continue // waits for a newer call of the number
			}
			done = append(done, w)
			data = append(data, it.lookupJSON)
		}
		if err := l.finishWaiters(ctx, tx, done, data, t); err != nil {
			return err
		}
	}
	return nil
}

// lockWaiters reads and locks the waiters matching where.
func (l *Lookups) lockWaiters(ctx context.Context, tx storage.Querier, where string, args []any) ([]waiter, error) {
	d := l.db.Dialect
	rs, err := tx.QueryContext(ctx, d.Rebind(`SELECT import_id, row_num, tenant, e164, generation, is_repeat
		FROM lookup_waiters WHERE `+where+` ORDER BY import_id, row_num`+d.ForUpdate()), args...)
	if err != nil {
		return nil, fmt.Errorf("lock lookup waiters: %w", err)
	}
	defer rs.Close()
	var out []waiter
	for rs.Next() {
		var (
			w      waiter
			repeat int
		)
		if err := rs.Scan(&w.importID, &w.row, &w.tenant, &w.e164, &w.generation, &repeat); err != nil {
			return nil, fmt.Errorf("scan lookup waiter: %w", err)
		}
		w.repeat = repeat != 0
		out = append(out, w)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read lookup waiters: %w", err)
	}
	return out, nil
}

// finishWaiters sets each waiter's row lookup (data[i] for ws[i]), deletes
// the waiters and counts them per import.
func (l *Lookups) finishWaiters(ctx context.Context, tx storage.Querier, ws []waiter, data [][]byte, t tally) error {
	if len(ws) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(ws))
	byImport := map[string][]int{}
	for i, w := range ws {
		args = append(args, w.importID, w.row, string(data[i]))
		byImport[w.importID] = append(byImport[w.importID], w.row)
		t.add(w)
	}
	p := projector{ctx: ctx, tx: tx, d: l.db.Dialect}
	if err := p.insertIgnore("result_lookups", []string{"import_id", "row_num", "data"}, args); err != nil {
		return err
	}
	for id, rows := range byImport {
		for start := 0; start < len(rows); start += projectBatch {
			chunk := rows[start:min(start+projectBatch, len(rows))]
			isRow, in := storage.OneOf(l.db.Dialect, "row_num", chunk)
			if _, err := tx.ExecContext(ctx, l.db.Dialect.Rebind(`DELETE FROM lookup_waiters WHERE import_id = ? AND `+isRow),
				append([]any{id}, in...)...); err != nil {
				return fmt.Errorf("delete lookup waiters of %s: %w", id, err)
			}
		}
	}
	return nil
}

// drain reads and closes the rows of a locking query.
func drain(rs rowScanner, err error) error {
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
	}
	return rs.Err()
}

// tally counts rows that stopped waiting, per import.
type tally map[string]*domain.JobProjected

func (t tally) add(w waiter) {
	ev, ok := t[w.importID]
	if !ok {
		ev = &domain.JobProjected{ImportID: w.importID, Tenant: w.tenant, Kind: domain.ProjectedLookups}
		t[w.importID] = ev
	}
	dup := 0
	if w.repeat {
		dup = 1
	}
	ev.Counts = ev.Counts.Add(domain.LookupsDone(1, dup))
}

// projected returns the counts in import order.
func (t tally) projected() []domain.JobProjected {
	ids := sortedKeys(t)
	out := make([]domain.JobProjected, len(ids))
	for i, id := range ids {
		out[i] = *t[id]
	}
	return out
}
