package handlers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/handlers"
)

// seenOnce is a Deduper in memory.
type seenOnce map[string]bool

func (s seenOnce) FirstTime(_ context.Context, handler, key string) (bool, error) {
	k := handler + "\x00" + key
	if s[k] {
		return false, nil
	}
	s[k] = true
	return true, nil
}

// published collects published events.
type published []any

func (p *published) Publish(_ context.Context, ev any) error {
	*p = append(*p, ev)
	return nil
}

type fakeResolver struct{ calls int }

func (f *fakeResolver) ProjectLookups(_ context.Context, m domain.LookupsRecorded) ([]domain.JobProjected, error) {
	f.calls++
	return []domain.JobProjected{
		{ImportID: "a", Tenant: "t", Kind: domain.ProjectedLookups, Counts: domain.LookupsDone(2, 1)},
		{ImportID: "b", Tenant: "t", Kind: domain.ProjectedLookups, Counts: domain.LookupsDone(1, 0)},
	}, nil
}

func TestLookupProjectorPublishesOncePerBatch(t *testing.T) {
	var out published
	r := &fakeResolver{}
	p := handlers.LookupProjector{Lookups: r, Events: &out, Dedupe: seenOnce{}}
	m := &domain.LookupsRecorded{Batch: "b1"}
	for range 2 { // a redelivery changes nothing
		if err := p.Handle(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if r.calls != 1 || len(out) != 2 {
		t.Fatalf("%d projections, %d events; want 1 and 2", r.calls, len(out))
	}
	for _, ev := range out {
		jp := ev.(*domain.JobProjected)
		if jp.Key != "b1" || jp.Kind != domain.ProjectedLookups {
			t.Errorf("published %+v, want the batch as key", jp)
		}
	}
	if a, b := out[0].(*domain.JobProjected).CountKey(), out[1].(*domain.JobProjected).CountKey(); a == b {
		t.Errorf("two imports' counts share the key %q", a)
	}
}

// memImports is an ImportStore of one import.
type memImports struct{ im domain.Import }

func (m *memImports) Update(_ context.Context, _ string, fn func(*domain.Import) error) (domain.Import, error) {
	next := m.im
	if err := fn(&next); err != nil {
		return domain.Import{}, err
	}
	m.im = next
	return next, nil
}

func TestAggregatorCompletesAfterLookups(t *testing.T) {
	im, _ := domain.NewImport("a", "t", 4, time.Now())
	_ = im.Start(1)
	store := &memImports{im: im}
	var out published
	agg := handlers.Aggregator{Imports: store, Events: &out, Dedupe: seenOnce{}}
	job, _ := domain.Counts{Processed: 4, Valid: 3, Invalid: 1, Duplicates: 1}.AwaitLookups(3, 1)
	ctx := context.Background()
	if err := agg.Handle(ctx, &domain.JobProjected{ImportID: "a", Tenant: "t", Job: 1, Counts: job}); err != nil {
		t.Fatal(err)
	}
	lk := &domain.JobProjected{ImportID: "a", Tenant: "t", Kind: domain.ProjectedLookups, Key: "k1", Counts: domain.LookupsDone(3, 1)}
	for range 2 {
		if err := agg.Handle(ctx, lk); err != nil {
			t.Fatal(err)
		}
	}
	var completed int
	for _, ev := range out {
		if c, ok := ev.(*domain.ImportCompleted); ok {
			completed++
			if c.Import.Processed != 4 || c.Import.Valid != 3 || c.Import.Duplicates != 1 {
				t.Errorf("completed %+v", c.Import)
			}
		}
	}
	if completed != 1 || len(out) != 2 {
		t.Fatalf("events %+v, want progress then one completion", out)
	}
	err := agg.Handle(ctx, &domain.JobProjected{ImportID: "a", Kind: domain.ProjectedLookups, Key: "k2", Counts: domain.LookupsDone(1, 0)})
	if !errors.Is(err, domain.ErrInvariant) {
		t.Errorf("lookups counted after completion: %v", err)
	}
}
