package domain

import (
	"fmt"
	"time"
)

// This file holds the rules of rows that wait for a third-party lookup.
//
// A valid row whose number must be looked up is projected (its result is
// readable) but not yet processed: it is counted in Counts.Awaiting until
// its lookup is terminal, then moved into Processed and Valid (and
// Duplicates, when it repeats a number). So `processed == total` still
// holds exactly when the import is completed, and an import completes when
// every job is counted and no row awaits a lookup.

// Kinds of JobProjected.
const (
	// ProjectedJob counts the rows of one projected job (the zero value).
	ProjectedJob = ""
	// ProjectedLookups counts rows whose lookups became terminal.
	ProjectedLookups = "lookups"
)

// Rows is how many rows the counts cover, processed or awaiting.
func (c Counts) Rows() int { return c.Processed + c.Awaiting }

// AwaitLookups moves rows valid rows, dups of them repeats, from processed
// into awaiting: their lookups are pending.
func (c Counts) AwaitLookups(rows, dups int) (Counts, error) {
	if rows < 0 || dups < 0 || dups > rows || rows > c.Valid || dups > c.Duplicates {
		return c, fmt.Errorf("%w: %d rows (%d repeats) cannot await lookups in %+v", ErrInvariant, rows, dups, c)
	}
	c.Processed -= rows
	c.Valid -= rows
	c.Duplicates -= dups
	c.Awaiting += rows
	return c, c.Check()
}

// LookupsDone are the counts of rows whose lookups became terminal: dups of
// the rows repeat a number seen earlier in their import.
func LookupsDone(rows, dups int) Counts {
	return Counts{Processed: rows, Valid: rows, Duplicates: dups}
}

// checkLookupsDone verifies that c counts only rows that finished waiting.
func (c Counts) checkLookupsDone() error {
	if err := c.Check(); err != nil {
		return err
	}
	if c.Processed <= 0 || c.Valid != c.Processed || c.Awaiting != 0 {
		return fmt.Errorf("%w: %+v does not count finished lookups", ErrInvariant, c)
	}
	return nil
}

// ApplyLookups counts rows whose lookups became terminal. The caller
// guarantees each such count is applied once. It reports whether this
// completed the import: every job counted and no row awaiting any more.
func (im *Import) ApplyLookups(c Counts, at time.Time) (completed bool, err error) {
	if err := c.checkLookupsDone(); err != nil {
		return false, err
	}
	if im.Status != StatusProcessing {
		return false, fmt.Errorf("%w: import %s is %s, cannot count lookups", ErrInvariant, im.ID, im.Status)
	}
	if c.Processed > im.Counts.Awaiting {
		return false, fmt.Errorf("%w: import %s: %d lookups done but %d rows await one",
			ErrInvariant, im.ID, c.Processed, im.Counts.Awaiting)
	}
	next := im.Counts
	next.Awaiting -= c.Processed
	next.Processed += c.Processed
	next.Valid += c.Valid
	next.Duplicates += c.Duplicates
	if err := next.Check(); err != nil {
		return false, err
	}
	im.Counts = next
	im.Seq++
	if im.JobsDone == im.Jobs && next.Awaiting == 0 {
		im.complete(at)
		return true, nil
	}
	return false, nil
}

// ApplyProjected counts one JobProjected of either kind.
func (im *Import) ApplyProjected(ev JobProjected, at time.Time) (completed bool, err error) {
	switch ev.Kind {
	case ProjectedJob:
		return im.ApplyJob(ev.Counts, at)
	case ProjectedLookups:
		return im.ApplyLookups(ev.Counts, at)
	default:
		return false, fmt.Errorf("%w: import %s: unknown projected kind %q", ErrPermanent, im.ID, ev.Kind)
	}
}

// jobsCounted is called when the last job has been counted: the import
// completes unless rows still await lookups, in which case the time is
// kept as the start of the lookup deadline.
func (im *Import) jobsCounted(at time.Time) bool {
	if im.Counts.Awaiting > 0 {
		t := at.UTC()
		im.ValidatedAt = &t
		return false
	}
	im.complete(at)
	return true
}

// complete marks the import completed at at.
func (im *Import) complete(at time.Time) {
	done := at.UTC()
	im.Status = StatusCompleted
	im.CompletedAt = &done
}

// LookupsOverdue reports whether the import has waited for lookups longer
// than deadline since its last job was counted: its waiting rows must stop
// waiting.
func (im Import) LookupsOverdue(now time.Time, deadline time.Duration) bool {
	return im.Status == StatusProcessing && im.Counts.Awaiting > 0 && im.ValidatedAt != nil &&
		!now.Before(im.ValidatedAt.Add(deadline))
}

// CountKey is the aggregator's idempotency key of a JobProjected.
func (ev JobProjected) CountKey() string {
	if ev.Kind == ProjectedLookups {
		return ev.ImportID + "/lookups/" + ev.Key
	}
	return JobKey(ev.ImportID, ev.Job)
}
