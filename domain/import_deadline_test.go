package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
)

func TestDeadlinePassed(t *testing.T) {
	accepted, err := domain.NewImport("imp", "t", 1200, time.Unix(1000, 0))
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return time.Unix(1000, 0).Add(d) }
	proc := processing(t, 1200, 3)
	proc.CreatedAt = accepted.CreatedAt
	done := proc
	if _, err := done.ApplyJob(domain.Counts{Processed: 500, Valid: 500}, at(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := done.ApplyJob(domain.Counts{Processed: 500, Invalid: 500}, at(0)); err != nil {
		t.Fatal(err)
	}
	if completed, err := done.ApplyJob(domain.Counts{Processed: 200, Failed: 200}, at(0)); err != nil || !completed {
		t.Fatalf("last job: completed %v, %v", completed, err)
	}
	for _, c := range []struct {
		name     string
		im       domain.Import
		now      time.Duration
		deadline time.Duration
		want     bool
	}{
		{"accepted, before", accepted, time.Hour - time.Nanosecond, time.Hour, false},
		{"accepted, at", accepted, time.Hour, time.Hour, true},
		{"processing, after", proc, 2 * time.Hour, time.Hour, true},
		{"processing, before", proc, time.Minute, time.Hour, false},
		{"completed, after", done, 2 * time.Hour, time.Hour, false},
		{"no deadline", proc, 1000 * time.Hour, 0, false},
		{"negative deadline", proc, 1000 * time.Hour, -time.Second, false},
	} {
		if got := c.im.DeadlinePassed(at(c.now), c.deadline); got != c.want {
			t.Errorf("%s: DeadlinePassed = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestJobRangesMatchTheSplit(t *testing.T) {
	accepted, err := domain.NewImport("imp", "t", 1200, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := accepted.JobRanges(500)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{1, 500}, {501, 1000}, {1001, 1200}}
	if len(got) != len(want) {
		t.Fatalf("ranges %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ranges %v, want %v", got, want)
		}
	}
	proc := processing(t, 1200, 3)
	if _, err := proc.JobRanges(500); err != nil {
		t.Errorf("split into 3 jobs, size 500: %v", err)
	}
	if _, err := proc.JobRanges(600); !errors.Is(err, domain.ErrInvariant) {
		t.Errorf("split into 3 jobs, size 600 makes 2: %v, want an invariant error", err)
	}
	if _, err := proc.JobRanges(0); !errors.Is(err, domain.ErrInvariant) {
		t.Errorf("size 0: %v, want an invariant error", err)
	}
}

// TestDeadlineFailuresCompleteTheImport: rows the watchdog fails are
// counted like any job's (failed, processed) and the last job completes the
// import with processed == total; then its deadline no longer applies.
func TestDeadlineFailuresCompleteTheImport(t *testing.T) {
	im := processing(t, 1200, 3)
	if _, err := im.ApplyJob(domain.Counts{Processed: 500, Valid: 400, Invalid: 100, Duplicates: 7}, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	row := domain.NumberValidated{Row: 501, Input: "+3612345678",
		Result: phone.Result{Reason: phone.ReasonProcessingFailed}, Detail: domain.DeadlineDetail(time.Hour)}
	if c := domain.OutcomeOf(row); c != (domain.Counts{Processed: 1, Failed: 1}) {
		t.Fatalf("outcome of a row failed by the deadline: %+v", c)
	}
	for _, rows := range []int{500, 200} {
		failed := domain.Counts{Processed: rows, Failed: rows}
		completed, err := im.ApplyJob(failed, time.Unix(3600, 0))
		if err != nil {
			t.Fatal(err)
		}
		if completed != (rows == 200) {
			t.Fatalf("job of %d failed rows: completed %v", rows, completed)
		}
	}
	s := im.Summary()
	if s.Status != domain.StatusCompleted || s.Processed != 1200 || s.Failed != 700 || s.Valid != 400 || s.Invalid != 100 {
		t.Fatalf("summary %+v", s)
	}
	if im.DeadlinePassed(time.Unix(7200, 0), time.Second) {
		t.Error("a completed import's deadline passed")
	}
	if got := domain.DeadlineDetail(time.Hour); got != "import deadline exceeded after 1h0m0s" {
		t.Errorf("detail %q", got)
	}
}
