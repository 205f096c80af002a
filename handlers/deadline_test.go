package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// deadlineImports is a handlers.DeadlineImports in memory.
type deadlineImports map[string]*domain.Import

func (m deadlineImports) Open(_ context.Context, before time.Time, after string, limit int) ([]string, error) {
	var ids []string
	for id, im := range m {
		if im.Status != domain.StatusCompleted && !im.CreatedAt.After(before) && id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids[:min(limit, len(ids))], nil
}

func (m deadlineImports) Peek(_ context.Context, id string) (domain.Import, error) {
	if im, ok := m[id]; ok {
		return *im, nil
	}
	return domain.Import{}, domain.ErrNotFound
}

func (m deadlineImports) Update(_ context.Context, id string, fn func(*domain.Import) error) (domain.Import, error) {
	im, ok := m[id]
	if !ok {
		return domain.Import{}, domain.ErrNotFound
	}
	next := *im
	if err := fn(&next); err != nil {
		return domain.Import{}, err
	}
	*im = next
	return next, nil
}

// numberedRows stores "input-<row>" for every row.
type numberedRows struct{}

func (numberedRows) Rows(_ context.Context, _ string, first, last int) ([]storage.StoredRow, error) {
	var out []storage.StoredRow
	for r := first; r <= last; r++ {
		out = append(out, storage.StoredRow{Row: r, Input: fmt.Sprintf("input-%d", r)})
	}
	return out, nil
}

type failedCount int

func (f *failedCount) RowsFailedByDeadline(n int) { *f += failedCount(n) }

// watchdogAt returns a watchdog whose clock reads *now.
func watchdogAt(t *testing.T, now *time.Time, ims deadlineImports, seen seenOnce, out *published, obs *failedCount) *handlers.DeadlineWatchdog {
	t.Helper()
	w, err := handlers.NewDeadlineWatchdog(handlers.DeadlineWatchdogConfig{
		Deadline: time.Hour, Imports: ims, Rows: numberedRows{}, Streams: firstVersions{}, Events: out, Dedupe: seen,
		InTx: func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) },
		Now:  func() time.Time { return *now }, Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestDeadlineWatchdogFailsOnlyUnclaimedJobsOnce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	proc, _ := domain.NewImport("imp-a", "t", 1200, t0)
	if err := proc.Start(3); err != nil {
		t.Fatal(err)
	}
	never, _ := domain.NewImport("imp-b", "t", 700, t0)
	ims := deadlineImports{"imp-a": &proc, "imp-b": &never}
	seen := seenOnce{}
	// Job 1 of imp-a was validated before the deadline.
	if _, err := seen.FirstTime(context.Background(), handlers.ValidatorName, domain.JobKey("imp-a", 1)); err != nil {
		t.Fatal(err)
	}
	var (
		out published
		obs failedCount
		now = t0.Add(time.Hour - time.Millisecond)
	)
	w := watchdogAt(t, &now, ims, seen, &out, &obs)
	if err := w.Sweep(context.Background()); err != nil || len(out) != 0 {
		t.Fatalf("before the deadline: %d events, %v", len(out), err)
	}

	now = t0.Add(time.Hour)
	other := watchdogAt(t, &now, ims, seen, &out, &obs) // a second aggregate process
	for range 2 {
		for _, w := range []*handlers.DeadlineWatchdog{w, other} {
			if err := w.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	jobs := map[string]int{}
	for _, ev := range out {
		m := ev.(*domain.NumbersRecorded)
		jobs[domain.JobKey(m.ImportID, m.Job)] += len(m.Events)
		for _, e := range m.Events {
			var v domain.NumberValidated
			if err := json.Unmarshal(e.Data, &v); err != nil {
				t.Fatal(err)
			}
			if v.Reason != domain.ReasonProcessingFailed || v.Detail != "import deadline exceeded after 1h0m0s" ||
				v.Input != fmt.Sprintf("input-%d", v.Row) || e.Stream != domain.RowStream("t", m.ImportID, v.Row) {
				t.Fatalf("event %+v with %+v", e, v)
			}
		}
	}
	want := map[string]int{"imp-a/2": 500, "imp-a/3": 200, "imp-b/1": 500, "imp-b/2": 200}
	if fmt.Sprint(jobs) != fmt.Sprint(want) || obs != 1400 {
		t.Fatalf("failed jobs %v (%d rows observed), want %v once each", jobs, obs, want)
	}
	if never.Status != domain.StatusProcessing || never.Jobs != 2 {
		t.Errorf("unsplit import after the sweep: %+v, want split into 2 jobs", never)
	}
	// The splitter and validator come late: their claims are taken.
	if first, _ := seen.FirstTime(context.Background(), handlers.SplitterName, "imp-b"); first {
		t.Error("the split of imp-b was not claimed")
	}
	if first, _ := seen.FirstTime(context.Background(), handlers.ValidatorName, domain.JobKey("imp-a", 3)); first {
		t.Error("job 3 of imp-a was not claimed")
	}
}

func TestDeadlineWatchdogNeedsTheSplitterJobSize(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	im, _ := domain.NewImport("imp", "t", 1200, t0)
	if err := im.Start(2); err != nil { // split with --job-size 600
		t.Fatal(err)
	}
	var out published
	now := t0.Add(2 * time.Hour)
	var obs failedCount
	w := watchdogAt(t, &now, deadlineImports{"imp": &im}, seenOnce{}, &out, &obs)
	if err := w.Sweep(context.Background()); !errors.Is(err, domain.ErrInvariant) || len(out) != 0 {
		t.Fatalf("sweep with another job size: %v, %d events; want an invariant error and none", err, len(out))
	}
}
