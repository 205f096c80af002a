package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
)

// processing returns an import of total rows split into jobs jobs.
func processing(t *testing.T, total, jobs int) domain.Import {
	t.Helper()
	im, err := domain.NewImport("imp", "t", total, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Start(jobs); err != nil {
		t.Fatal(err)
	}
	return im
}

func TestAwaitLookups(t *testing.T) {
	job := domain.Counts{Processed: 10, Valid: 7, Invalid: 3, Duplicates: 2}
	c, err := job.AwaitLookups(5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := (domain.Counts{Processed: 5, Valid: 2, Invalid: 3, Duplicates: 1, Awaiting: 5}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	if c.Rows() != 10 {
		t.Errorf("rows %d, want 10", c.Rows())
	}
	for _, bad := range [][2]int{{8, 0}, {2, 3}, {3, 3}, {-1, 0}} {
		if _, err := job.AwaitLookups(bad[0], bad[1]); !errors.Is(err, domain.ErrInvariant) {
			t.Errorf("%d rows (%d repeats) awaiting: %v, want an invariant error", bad[0], bad[1], err)
		}
	}
}

func TestImportWaitsForLookups(t *testing.T) {
	im := processing(t, 10, 2)
	at := time.Unix(100, 0)
	// Job 1: 5 rows, 4 valid of which 3 wait (1 of them a repeat).
	c1, _ := domain.Counts{Processed: 5, Valid: 4, Invalid: 1, Duplicates: 1}.AwaitLookups(3, 1)
	if done, err := im.ApplyJob(c1, at); err != nil || done {
		t.Fatalf("job 1: completed %v, %v", done, err)
	}
	// Job 2: 5 rows, all valid, 2 wait.
	c2, _ := domain.Counts{Processed: 5, Valid: 5}.AwaitLookups(2, 0)
	done, err := im.ApplyJob(c2, at)
	if err != nil || done {
		t.Fatalf("last job with rows awaiting lookups: completed %v, %v", done, err)
	}
	if im.Status != domain.StatusProcessing || im.Counts.Processed != 5 || im.Counts.Awaiting != 5 ||
		im.ValidatedAt == nil || !im.ValidatedAt.Equal(at) {
		t.Fatalf("after every job: %+v", im)
	}
	if im.LookupsOverdue(at.Add(time.Minute-time.Nanosecond), time.Minute) || !im.LookupsOverdue(at.Add(time.Minute), time.Minute) {
		t.Error("overdue exactly from ValidatedAt + deadline")
	}
	if done, err := im.ApplyLookups(domain.LookupsDone(3, 1), at); err != nil || done {
		t.Fatalf("3 of 5 lookups: completed %v, %v", done, err)
	}
	if _, err := im.ApplyLookups(domain.LookupsDone(3, 0), at); !errors.Is(err, domain.ErrInvariant) {
		t.Errorf("more lookups done than rows awaiting: %v", err)
	}
	end := time.Unix(200, 0)
	done, err = im.ApplyProjected(domain.JobProjected{Kind: domain.ProjectedLookups, Counts: domain.LookupsDone(2, 0)}, end)
	if err != nil || !done {
		t.Fatalf("last lookups: completed %v, %v", done, err)
	}
	want := domain.Counts{Processed: 10, Valid: 9, Invalid: 1, Duplicates: 1}
	if im.Status != domain.StatusCompleted || im.Counts != want || im.CompletedAt == nil || !im.CompletedAt.Equal(end) {
		t.Errorf("completed import %+v, want counts %+v", im, want)
	}
	if im.Summary().Processed != im.Total {
		t.Error("processed != total at completion")
	}
	if _, err := im.ApplyLookups(domain.LookupsDone(1, 0), end); !errors.Is(err, domain.ErrInvariant) {
		t.Errorf("lookups after completion: %v", err)
	}
	if im.LookupsOverdue(end.Add(time.Hour), time.Minute) {
		t.Error("a completed import is never overdue")
	}
}

func TestLookupsCompleteBeforeTheLastJob(t *testing.T) {
	im := processing(t, 4, 2)
	c1, _ := domain.Counts{Processed: 2, Valid: 2}.AwaitLookups(2, 0)
	if _, err := im.ApplyJob(c1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if done, err := im.ApplyLookups(domain.LookupsDone(2, 0), time.Now()); err != nil || done {
		t.Fatalf("lookups of job 1 with job 2 to come: completed %v, %v", done, err)
	}
	if im.Counts.Processed != 2 || im.Status != domain.StatusProcessing {
		t.Fatalf("%+v", im)
	}
	done, err := im.ApplyJob(domain.Counts{Processed: 2, Invalid: 2}, time.Now())
	if err != nil || !done || im.ValidatedAt != nil {
		t.Fatalf("last job with nothing awaiting: completed %v, %v, validated at %v", done, err, im.ValidatedAt)
	}
}

func TestLookupCountsAreChecked(t *testing.T) {
	im := processing(t, 4, 1)
	c, _ := domain.Counts{Processed: 4, Valid: 4}.AwaitLookups(4, 0)
	if _, err := im.ApplyJob(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []domain.Counts{
		{}, {Processed: 1, Invalid: 1}, {Processed: 1, Valid: 1, Awaiting: 1}, {Processed: 1, Valid: 1, Duplicates: 2},
	} {
		if _, err := im.ApplyLookups(bad, time.Now()); !errors.Is(err, domain.ErrInvariant) {
			t.Errorf("ApplyLookups(%+v): %v, want an invariant error", bad, err)
		}
	}
	if _, err := im.ApplyProjected(domain.JobProjected{Kind: "other"}, time.Now()); !errors.Is(err, domain.ErrPermanent) {
		t.Errorf("unknown kind: %v", err)
	}
	// A job that would cover more rows than the import has.
	im2 := processing(t, 4, 2)
	if _, err := im2.ApplyJob(domain.Counts{Processed: 3, Valid: 3, Awaiting: 2}, time.Now()); !errors.Is(err, domain.ErrInvariant) {
		t.Errorf("job of 5 rows in an import of 4: %v", err)
	}
}

func TestCountKeys(t *testing.T) {
	job := domain.JobProjected{ImportID: "imp", Job: 3}
	lk := domain.JobProjected{ImportID: "imp", Kind: domain.ProjectedLookups, Key: "batch-1"}
	if job.CountKey() != domain.JobKey("imp", 3) || lk.CountKey() != "imp/lookups/batch-1" {
		t.Errorf("keys %q and %q", job.CountKey(), lk.CountKey())
	}
}

func TestLookupRules(t *testing.T) {
	now := time.Unix(1000, 0)
	ok := domain.Lookup{Status: domain.LookupOK}
	if !ok.FreshFor(now.Add(-time.Hour), now, 2*time.Hour) || ok.FreshFor(now.Add(-2*time.Hour), now, 2*time.Hour) {
		t.Error("an ok lookup is fresh for its TTL only")
	}
	failed := domain.Lookup{Status: domain.LookupFailed, Reason: domain.LookupReasonTimeout}
	if failed.FreshFor(now, now, time.Hour) {
		t.Error("a failed lookup is never reused")
	}
	if ok.EventType() != domain.EventLookupSucceeded || failed.EventType() != domain.EventLookupFailed {
		t.Error("event types")
	}
	if !ok.AsCached().Cached || ok.Cached {
		t.Error("AsCached marks a copy")
	}
	for _, bad := range []domain.Lookup{{}, {Status: "pending"}, {Status: domain.LookupSkipped}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := domain.SkippedLookup(domain.LookupReasonDeadline, now).Validate(); err != nil {
		t.Error(err)
	}
	if !domain.IsLookupEvent(domain.EventLookupFailed) || domain.IsLookupEvent(domain.EventNumberValidated) {
		t.Error("IsLookupEvent")
	}
}
