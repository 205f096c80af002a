package projections_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/internal/listgen"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// benchJobRows is the default job size of the service.
const benchJobRows = 500

// capture keeps the last published event.
type capture struct{ last any }

func (c *capture) Publish(_ context.Context, event any) error { c.last = event; return nil }

// jobSource makes jobs of a realistic list the way the service does: rows
// stored as an upload, then validated by the real validator against the
// database's stream heads, so versions and repeats are what a run sees.
type jobSource struct {
	db     *storage.DB
	gen    *listgen.Generator
	events *capture
	v      handlers.Validator
	n      int
}

func newJobSource(b *testing.B, db *storage.DB) *jobSource {
	b.Helper()
	g, err := listgen.New(listgen.Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	events := &capture{}
	return &jobSource{db: db, gen: g, events: events, v: handlers.Validator{
		Rows: storage.NewUploads(db), Streams: storage.NewStreamHeads(db), Events: events, Dedupe: storage.NewHandled(db)}}
}

// next stores and validates the next job of the list and returns the
// message the validator published.
func (s *jobSource) next(ctx context.Context) (domain.NumbersRecorded, error) {
	s.n++
	job := &domain.ValidateJob{ImportID: fmt.Sprintf("imp-%d", s.n), Tenant: "t", Job: 1, FirstRow: 1, LastRow: benchJobRows}
	err := storage.InTx(ctx, s.db.Write, func(ctx context.Context) error {
		w, err := storage.NewUploads(s.db).Writer(ctx, job.ImportID)
		if err != nil {
			return err
		}
		for i := range benchJobRows {
			r := s.gen.Next()
			if err := w.Add(storage.StoredRow{Row: i + 1, Input: r.Number, Region: r.Region, Ref: r.Ref}); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		return s.v.Handle(ctx, job)
	})
	if err != nil {
		return domain.NumbersRecorded{}, err
	}
	m, ok := s.events.last.(*domain.NumbersRecorded)
	if !ok {
		return domain.NumbersRecorded{}, fmt.Errorf("validator published %T", s.events.last)
	}
	return *m, nil
}

// BenchmarkProjectJob is the projector's write of one 500-event job on
// the embedded SQLite database, in one transaction as the bus runs it:
// results, per-import number counts, per-number projection and event
// streams. Each iteration projects a new import of the same list, so the
// tables grow as in a long run.
func BenchmarkProjectJob(b *testing.B) {
	ctx := context.Background()
	db, err := storage.OpenSQLite(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := projections.Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	phone.Warm()
	src := newJobSource(b, db)
	numbers := projections.NewNumbers(db)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m, err := src.next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		err = storage.InTx(ctx, db.Write, func(ctx context.Context) error {
			_, err := numbers.Project(ctx, m)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchJobRows), "ns/event")
}
