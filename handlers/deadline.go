package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/periodic"
)

// DefaultImportDeadline is how long an import may stay open after it was
// accepted before the watchdog fails what is missing (--import-deadline).
const DefaultImportDeadline = time.Hour

// deadlineBatch imports are listed per query of a sweep.
const deadlineBatch = 100

// deadlineStepTimeout bounds one transaction of the watchdog: a claim that
// waits on a handler still holding it (an open transaction) is given up
// and tried again at the next sweep.
const deadlineStepTimeout = 30 * time.Second

// DeadlineImports finds and reads imports for the DeadlineWatchdog
// (projections.Imports).
type DeadlineImports interface {
	ImportStore
	// Open lists up to limit imports, by id after after, that are not
	// completed and were accepted at or before acceptedBefore. It reads
	// committed state.
	Open(ctx context.Context, acceptedBefore time.Time, after string, limit int) ([]string, error)
	// Peek reads an import in the unit of work of ctx without locking it.
	Peek(ctx context.Context, id string) (domain.Import, error)
}

// Transactor runs fn in a unit of work of its own (storage.InTx).
type Transactor func(ctx context.Context, fn func(ctx context.Context) error) error

// DeadlineObserver is told how many rows the watchdog failed (metrics). It
// must be fast and must not fail.
type DeadlineObserver interface {
	RowsFailedByDeadline(n int)
}

// DeadlineWatchdogConfig configures a DeadlineWatchdog. Zero values mean
// the defaults.
type DeadlineWatchdogConfig struct {
	// Deadline is how long after its acceptance an import may stay open.
	// Default DefaultImportDeadline.
	Deadline time.Duration
	// Interval is how often overdue imports are looked for. Default a
	// tenth of Deadline, between 50ms and 30s.
	Interval time.Duration
	// JobSize is the splitter's --job-size (default DefaultJobSize). Give
	// every process the same.
	JobSize int
	Imports DeadlineImports
	Rows    RowSource
	Streams StreamVersions
	Events  EventPublisher
	Dedupe  Deduper
	InTx    Transactor
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger default: discard.
	Logger *slog.Logger
	// Observer, if set, is told about failed rows.
	Observer DeadlineObserver
}

func (c *DeadlineWatchdogConfig) setDefaults() {
	if c.Deadline == 0 {
		c.Deadline = DefaultImportDeadline
	}
	if c.Interval == 0 {
		c.Interval = min(max(c.Deadline/10, 50*time.Millisecond), 30*time.Second)
	}
	if c.JobSize == 0 {
		c.JobSize = DefaultJobSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c DeadlineWatchdogConfig) Validate() error {
	if c.Imports == nil || c.Rows == nil || c.Streams == nil || c.Events == nil || c.Dedupe == nil || c.InTx == nil {
		return errors.New("import deadline: watchdog needs imports, rows, streams, events, dedupe and a transactor")
	}
	if c.Deadline < 0 || c.Interval < 0 || c.JobSize < 0 {
		return errors.New("import deadline: negative watchdog setting")
	}
	return nil
}

// DeadlineWatchdog keeps the import deadline: an import still open
// (accepted or processing) Deadline after it was accepted has every row
// that has no result yet failed as PROCESSING_FAILED, with the detail
// "import deadline exceeded after …".
//
// It fails rows the way the Salvager does, job by job: it claims a job
// under the validator's idempotency key and, when the claim is new (the
// validator never finished the job), publishes the job's rows as failed
// number.validated.v1 events on their row streams in one NumbersRecorded.
// The projector makes them readable and the aggregator counts them and
// completes the import by its one rule, exactly once. A job the validator
// claimed first keeps its real results; a validator (or a requeued
// poisoned job) that comes after the watchdog finds the job claimed and
// does nothing: the first claim of a job wins, so no row ever has two
// results. An import whose split never ran is split here first, by
// claiming it under the splitter's key (its rows are stored at
// acceptance, so its total is known).
//
// Claims are idempotency records written in the same transaction as the
// events, so sweeps of several aggregate processes (or a sweep retried
// after a crash) never fail a job twice. The watchdog does not wait for
// anything already on the bus: rows validated but not yet projected, and
// rows waiting for lookups (--lookup-deadline ends those), are left to
// their stages.
type DeadlineWatchdog struct {
	cfg DeadlineWatchdogConfig
}

// NewDeadlineWatchdog validates cfg, fills in its defaults and returns a
// DeadlineWatchdog.
func NewDeadlineWatchdog(cfg DeadlineWatchdogConfig) (*DeadlineWatchdog, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &DeadlineWatchdog{cfg: cfg}, nil
}

// Run sweeps until ctx is done, then returns nil. Errors are logged and
// retried at the next sweep.
func (w *DeadlineWatchdog) Run(ctx context.Context) error {
	return periodic.Run(ctx, w.cfg.Interval, w.Sweep, func(err error) {
		w.cfg.Logger.ErrorContext(ctx, "import deadline: sweep", "error", err)
	})
}

// Sweep fails what is missing of every import whose deadline has passed.
func (w *DeadlineWatchdog) Sweep(ctx context.Context) error {
	now := w.cfg.Now()
	var (
		errs  []error
		after string
	)
	for {
		ids, err := w.cfg.Imports.Open(ctx, now.Add(-w.cfg.Deadline), after, deadlineBatch)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, id := range ids {
			if err := w.expire(ctx, id, now); err != nil {
				errs = append(errs, fmt.Errorf("import %s: %w", id, err))
			}
		}
		if len(ids) < deadlineBatch || ctx.Err() != nil {
			return errors.Join(errs...)
		}
		after = ids[len(ids)-1]
	}
}

// inTx runs fn in a unit of work bounded by deadlineStepTimeout.
func (w *DeadlineWatchdog) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, deadlineStepTimeout)
	defer cancel()
	return w.cfg.InTx(ctx, fn)
}

// expire fails the unprocessed jobs of one import, if its deadline passed.
func (w *DeadlineWatchdog) expire(ctx context.Context, id string, now time.Time) error {
	im, err := w.split(ctx, id, now)
	if err != nil || !im.DeadlinePassed(now, w.cfg.Deadline) || im.Status != domain.StatusProcessing {
		return err
	}
	if im.JobsDone == im.Jobs {
		return nil // every job counted: only lookups are awaited, and they have their own deadline
	}
	ranges, err := im.JobRanges(w.cfg.JobSize)
	if err != nil {
		return err
	}
	detail := domain.DeadlineDetail(w.cfg.Deadline)
	var errs []error
	for i, r := range ranges {
		job := domain.ValidateJob{ImportID: im.ID, Tenant: im.Tenant, Job: i + 1, FirstRow: r[0], LastRow: r[1],
			DefaultRegion: im.DefaultRegion}
		var failed int
		err := w.inTx(ctx, func(ctx context.Context) error {
			first, err := w.cfg.Dedupe.FirstTime(ctx, ValidatorName, job.JobKey())
			if err != nil || !first {
				return err // claimed: validated, salvaged or failed before
			}
			failed, err = failJob(ctx, w.cfg.Rows, w.cfg.Streams, w.cfg.Events, job, now, detail)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("fail job %d: %w", job.Job, err))
			continue
		}
		if failed > 0 {
			w.cfg.Logger.WarnContext(ctx, "import deadline: job not validated in time, rows failed",
				"import", im.ID, "job", job.Job, "rows", failed, "deadline", w.cfg.Deadline)
			if w.cfg.Observer != nil {
				w.cfg.Observer.RowsFailedByDeadline(failed)
			}
		}
	}
	return errors.Join(errs...)
}

// split reads the import and, when its deadline passed before it was split,
// splits it: it claims the split under the splitter's key (the splitter
// then finds nothing to do) and starts the import with the jobs the
// splitter would have made, for expire to fail. It returns the import as
// it is after that.
func (w *DeadlineWatchdog) split(ctx context.Context, id string, now time.Time) (domain.Import, error) {
	var im domain.Import
	err := w.inTx(ctx, func(ctx context.Context) error {
		var err error
		if im, err = w.cfg.Imports.Peek(ctx, id); err != nil {
			return err
		}
		if !im.DeadlinePassed(now, w.cfg.Deadline) || im.Status != domain.StatusAccepted {
			return nil
		}
		// The splitter's order: its claim first, then the import's row.
		first, err := w.cfg.Dedupe.FirstTime(ctx, SplitterName, id)
		if err != nil {
			return err
		}
		if !first { // split meanwhile
			im, err = w.cfg.Imports.Peek(ctx, id)
			return err
		}
		ranges, err := im.JobRanges(w.cfg.JobSize)
		if err != nil {
			return err
		}
		im, err = w.cfg.Imports.Update(ctx, id, func(im *domain.Import) error { return im.Start(len(ranges)) })
		if err != nil {
			return fmt.Errorf("start import: %w", err)
		}
		w.cfg.Logger.WarnContext(ctx, "import deadline: import was never split, splitting it to fail its rows",
			"import", id, "jobs", len(ranges))
		return nil
	})
	return im, err
}
