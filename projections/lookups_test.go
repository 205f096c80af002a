package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// lookupWorld drives the lookup stage's SQL side the way the handlers do,
// each step in a transaction of its own.
type lookupWorld struct {
	t       *testing.T
	db      *storage.DB
	lookups *projections.Lookups
	calls   *projections.LookupCalls
	now     time.Time
}

func newLookupWorld(t *testing.T, db *storage.DB) *lookupWorld {
	w := &lookupWorld{t: t, db: db, calls: projections.NewLookupCalls(db), now: epoch}
	var err error
	w.lookups, err = projections.NewLookups(db, projections.LookupsConfig{TTL: time.Hour, Now: func() time.Time { return w.now }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *lookupWorld) tx(fn func(ctx context.Context) error) {
	w.t.Helper()
	if err := storage.InTx(context.Background(), w.db.Write, fn); err != nil {
		w.t.Fatal(err)
	}
}

// project validates and projects one job of inputs (E.164 numbers, or
// junk) and enqueues its lookups, returning the job's counts.
func (w *lookupWorld) project(importID string, inputs ...string) domain.Counts {
	w.t.Helper()
	var counts domain.Counts
	w.tx(func(ctx context.Context) error {
		m := domain.NumbersRecorded{ImportID: importID, Tenant: domain.DefaultTenant, Job: 1}
		streams := make([]domain.StreamID, len(inputs))
		vs := make([]domain.NumberValidated, len(inputs))
		for i, in := range inputs {
			vs[i] = domain.NumberValidated{Row: i + 1, Input: in, Result: phone.Enrich(in, "")}
			streams[i] = domain.RowStream(domain.DefaultTenant, importID, i+1)
			if vs[i].E164 != "" {
				streams[i] = domain.NumberStream(domain.DefaultTenant, vs[i].E164)
			}
		}
		versions, err := storage.NewStreamHeads(w.db).Next(ctx, streams)
		if err != nil {
			return err
		}
		for i, v := range vs {
			data, _ := json.Marshal(v)
			m.Events = append(m.Events, domain.NumberEvent{ID: fmt.Sprintf("%s-%d", importID, i), Stream: streams[i],
				Version: versions[i], Type: domain.EventNumberValidated, OccurredAt: w.now, ImportID: importID, Data: data})
		}
		if counts, err = projections.NewNumbers(w.db).Project(ctx, m); err != nil {
			return err
		}
		counts, err = w.lookups.Enqueue(ctx, m, counts)
		return err
	})
	return counts
}

// answer claims every due call and records lk for each of them (as the
// worker's recorder does), then projects the recorded lookups, returning
// what the aggregator is told.
func (w *lookupWorld) answer(lk func(e164 string) domain.Lookup) []domain.JobProjected {
	w.t.Helper()
	claimed, err := w.calls.ClaimDue(context.Background(), w.now, time.Minute, "tok", 100)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.record("tok", claimed, lk)
}

func (w *lookupWorld) record(token string, calls []domain.LookupCall, lk func(e164 string) domain.Lookup) []domain.JobProjected {
	w.t.Helper()
	m := domain.LookupsRecorded{Batch: fmt.Sprintf("batch-%d", w.now.UnixNano())}
	w.tx(func(ctx context.Context) error {
		for _, c := range calls {
			l := lk(c.E164)
			ok, err := w.calls.Settle(ctx, token, c, l, w.now)
			if err != nil || !ok {
				return err
			}
			v, err := storage.NewStreamHeads(w.db).Next(ctx, []domain.StreamID{c.Stream()})
			if err != nil {
				return err
			}
			data, _ := json.Marshal(domain.NumberLookedUp{E164: c.E164, Generation: c.Generation, Lookup: l})
			m.Lookups = append(m.Lookups, domain.RecordedLookup{Tenant: c.Tenant, Event: domain.NumberEvent{
				ID: "lk-" + c.E164 + fmt.Sprint(c.Generation), Stream: c.Stream(), Version: v[0], Type: l.EventType(), OccurredAt: w.now, Data: data}})
		}
		return nil
	})
	var out []domain.JobProjected
	w.tx(func(ctx context.Context) error {
		var err error
		out, err = w.lookups.ProjectLookups(ctx, m)
		return err
	})
	return out
}

// recordUnsettled projects an outcome of c without settling it (a late
// or redelivered one).
func (w *lookupWorld) recordUnsettled(c domain.LookupCall, l domain.Lookup) []domain.JobProjected {
	w.t.Helper()
	var out []domain.JobProjected
	w.tx(func(ctx context.Context) error {
		v, err := storage.NewStreamHeads(w.db).Next(ctx, []domain.StreamID{c.Stream()})
		if err != nil {
			return err
		}
		data, _ := json.Marshal(domain.NumberLookedUp{E164: c.E164, Generation: c.Generation, Lookup: l})
		m := domain.LookupsRecorded{Batch: "late", Lookups: []domain.RecordedLookup{{Tenant: c.Tenant, Event: domain.NumberEvent{
			ID: "late-" + c.E164, Stream: c.Stream(), Version: v[0], Type: l.EventType(), OccurredAt: w.now, Data: data}}}}
		out, err = w.lookups.ProjectLookups(ctx, m)
		return err
	})
	return out
}

// rowLookups returns the `lookup` of each row of an import (status/reason,
// "cached" appended when so; "" when none).
func (w *lookupWorld) rowLookups(importID string) map[int]string {
	w.t.Helper()
	out := map[int]string{}
	err := projections.NewResults(w.db).Each(context.Background(), importID, func(r projections.ResultRow) error {
		if r.Lookup == nil {
			out[r.Row] = ""
			return nil
		}
		var lk domain.Lookup
		if err := json.Unmarshal(r.Lookup, &lk); err != nil {
			return err
		}
		s := string(lk.Status) + "/" + lk.Reason
		if lk.Cached {
			s += " cached"
		}
		out[r.Row] = s
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func TestLookupStageSQL(t *testing.T) {
	for name, open := range dialects() {
		t.Run(name, func(t *testing.T) {
			w := newLookupWorld(t, open(t))
			const a, b = "+36301111111", "+36302222222"
			ok := func(string) domain.Lookup { return domain.Lookup{Status: domain.LookupOK, Carrier: "C"} }

			// Rows wait: 3 valid rows (one repeat) and a junk row.
			c := w.project("i1", a, b, a, "junk")
			if want := (domain.Counts{Processed: 1, Invalid: 1, Awaiting: 3}); c != want {
				t.Fatalf("job counts %+v, want %+v", c, want)
			}
			// b fails, a succeeds: all three rows stop waiting.
			got := w.answer(func(e string) domain.Lookup {
				if e == b {
					return domain.Lookup{Status: domain.LookupFailed, Reason: domain.LookupReasonTimeout}
				}
				return ok(e)
			})
			if len(got) != 1 || got[0].ImportID != "i1" || got[0].Kind != domain.ProjectedLookups ||
				got[0].Counts != domain.LookupsDone(3, 1) {
				t.Fatalf("lookups projected %+v, want 3 rows (1 repeat) of i1", got)
			}
			if rows := w.rowLookups("i1"); rows[1] != "ok/" || rows[2] != "failed/timeout" || rows[3] != "ok/" || rows[4] != "" {
				t.Fatalf("row lookups %v", rows)
			}

			// A later import: a is fresh (cached at once), b is asked again.
			w.now = w.now.Add(time.Minute)
			c = w.project("i2", a, b)
			if want := (domain.Counts{Processed: 1, Valid: 1, Awaiting: 1}); c != want {
				t.Fatalf("job counts %+v, want %+v", c, want)
			}
			if rows := w.rowLookups("i2"); rows[1] != "ok/ cached" || rows[2] != "" {
				t.Fatalf("row lookups %v", rows)
			}
			// An outcome of b's previous call (generation 1) arriving late
			// does not answer the row waiting for generation 2.
			if late := w.recordUnsettled(domain.LookupCall{Tenant: domain.DefaultTenant, E164: b, Generation: 1}, ok(b)); len(late) != 0 {
				t.Fatalf("an outcome of generation 1 resolved %+v", late)
			}
			claimed, err := w.calls.ClaimDue(context.Background(), w.now, time.Minute, "tok2", 10)
			if err != nil || len(claimed) != 1 || claimed[0].E164 != b || claimed[0].Generation != 2 {
				t.Fatalf("claimed %+v, %v; want b's second call", claimed, err)
			}
			if again, _ := w.calls.ClaimDue(context.Background(), w.now, time.Minute, "tok3", 10); len(again) != 0 {
				t.Fatalf("a leased call was claimed twice: %+v", again)
			}
			// The deadline: b's row stops waiting as skipped.
			var skipped *domain.JobProjected
			w.tx(func(ctx context.Context) error {
				skipped, err = w.lookups.SkipWaiters(ctx, "i2", domain.SkippedLookup(domain.LookupReasonDeadline, w.now))
				return err
			})
			if skipped == nil || skipped.Counts != domain.LookupsDone(1, 0) {
				t.Fatalf("skipped %+v, want b's row", skipped)
			}
			// The answer that comes after the deadline answers nobody.
			if got := w.record("tok2", claimed, ok); len(got) != 0 {
				t.Fatalf("a late answer resolved %+v", got)
			}
			if rows := w.rowLookups("i2"); rows[2] != "skipped/deadline" {
				t.Fatalf("row lookups %v", rows)
			}

			// The streams: versions gapless, lookups between validations.
			evs, err := projections.NewNumbers(w.db).Events(context.Background(), domain.DefaultTenant, b)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for i, ev := range evs {
				if ev.Version != int64(i+1) {
					t.Fatalf("events of b: %+v", evs)
				}
				types = append(types, ev.Type)
			}
			want := []string{domain.EventNumberValidated, domain.EventLookupFailed, domain.EventNumberValidated,
				domain.EventLookupSucceeded, domain.EventLookupSucceeded}
			if fmt.Sprint(types) != fmt.Sprint(want) {
				t.Fatalf("events of b %v, want %v", types, want)
			}
			n, err := projections.NewNumbers(w.db).Number(context.Background(), domain.DefaultTenant, b)
			if err != nil || n.Version != 5 || len(n.LastLookup) == 0 {
				t.Fatalf("number b %+v, %v", n, err)
			}

			// Opted-out imports are left alone.
			w.tx(func(ctx context.Context) error {
				return projections.NewLookupImports(projections.NewImports(w.db), w.db).OptOut(ctx, "i3")
			})
			if c := w.project("i3", "+36303333333"); c != (domain.Counts{Processed: 1, Valid: 1}) {
				t.Fatalf("opted-out job counts %+v", c)
			}
		})
	}
}
