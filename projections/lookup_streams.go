package projections

import (
	"context"
	"fmt"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// decodeLookup reads a lookup event for the stream projection. A lookup
// event takes a version of its number's stream like any other, so it is
// appended, parked and unparked by the same rule (see plan); it does not
// change the number's state, and the number is all the projector needs
// from its data.
func decodeLookup(ev domain.NumberEvent) (recorded, error) {
	d, err := domain.DecodeLookupEvent(ev)
	if err != nil {
		return recorded{}, fmt.Errorf("project: %w", err)
	}
	return recorded{ev: ev, v: domain.NumberValidated{Result: phone.Result{E164: d.E164}}}, nil
}

// applyLookupEvents appends a tenant's lookup events to their number
// streams and moves each number's version forward, keeping it gapless: an
// event whose predecessor is not projected yet is parked until it is.
func (n *Numbers) applyLookupEvents(ctx context.Context, tx storage.Querier, tenant string, events []domain.NumberEvent) error {
	rows := make([]recorded, len(events))
	for i, ev := range events {
		r, err := decodeLookup(ev)
		if err != nil {
			return err
		}
		rows[i] = r
	}
	p := projector{ctx: ctx, tx: tx, d: n.db.Dialect, tenant: tenant}
	return p.applyStreams(rows)
}

// saveNumberLookups keeps each number's latest successful lookup (by
// stream version) in number_lookups. The numbers are locked by the stream
// projection in the same unit of work.
func saveNumberLookups(ctx context.Context, tx storage.Querier, d storage.Dialect, tenant string, items []recordedLookup) error {
	latest := map[string]recordedLookup{}
	for _, it := range items {
		if it.data.Status != domain.LookupOK {
			continue
		}
		if cur, ok := latest[it.data.E164]; !ok || it.event.Version > cur.event.Version {
			latest[it.data.E164] = it
		}
	}
	if len(latest) == 0 {
		return nil
	}
	numbers := sortedKeys(latest)
	isNumber, in := storage.OneOf(d, "e164", numbers)
	rs, err := tx.QueryContext(ctx, d.Rebind(`SELECT e164, version FROM number_lookups WHERE tenant = ? AND `+isNumber),
		append([]any{tenant}, in...)...)
	if err != nil {
		return fmt.Errorf("read number lookups: %w", err)
	}
	stored := map[string]int64{}
	for rs.Next() {
		var (
			e string
			v int64
		)
		if err := rs.Scan(&e, &v); err != nil {
			rs.Close()
			return fmt.Errorf("scan number lookup: %w", err)
		}
		stored[e] = v
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return fmt.Errorf("read number lookups: %w", err)
	}
	var args []any
	n := 0
	for _, e := range numbers {
		it := latest[e]
		if v, ok := stored[e]; ok && v >= it.event.Version {
			continue
		}
		args = append(args, tenant, e, it.event.Version, millis(it.event.OccurredAt), string(it.lookupJSON))
		n++
	}
	if n == 0 {
		return nil
	}
	q := `INSERT INTO number_lookups (tenant, e164, version, done_at, result) VALUES ` + storage.Values(n, 5) + ` ` +
		d.OnConflictUpdate("tenant", "e164") + ` version = ` + d.Excluded("version") + `, done_at = ` +
		d.Excluded("done_at") + `, result = ` + d.Excluded("result")
	if _, err := tx.ExecContext(ctx, d.Rebind(q), args...); err != nil {
		return fmt.Errorf("save number lookups: %w", err)
	}
	return nil
}
