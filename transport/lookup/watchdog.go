package lookup

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/periodic"
)

// DefaultDeadline is how long an import may wait for lookups once every
// job of it is counted.
const DefaultDeadline = 10 * time.Minute

// overdueBatch imports are handled per sweep at most.
const overdueBatch = 100

// ImportLoader finds and loads imports for the watchdog
// (projections.LookupImports).
type ImportLoader interface {
	// Overdue lists imports still awaiting lookups whose jobs were all
	// counted at or before validatedBefore.
	Overdue(ctx context.Context, validatedBefore time.Time, limit int) ([]string, error)
	// Load reads and locks an import with its lookup state in the unit of
	// work of ctx.
	Load(ctx context.Context, id string) (domain.Import, error)
}

// WaiterSkipper ends the wait of an import's rows (projections.Lookups).
type WaiterSkipper interface {
	SkipWaiters(ctx context.Context, importID string, lk domain.Lookup) (*domain.JobProjected, error)
}

// WatchdogConfig configures a Watchdog. Zero values mean the defaults.
type WatchdogConfig struct {
	// Deadline is how long an import may wait for lookups after its last
	// job is counted. Default 10m.
	Deadline time.Duration
	// Interval is how often overdue imports are looked for. Default a
	// tenth of Deadline, between 50ms and 1s.
	Interval time.Duration
	Imports  ImportLoader
	Waiters  WaiterSkipper
	Events   EventPublisher
	InTx     Transactor
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger default: discard.
	Logger *slog.Logger
}

func (c *WatchdogConfig) setDefaults() {
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.Interval == 0 {
		c.Interval = min(max(c.Deadline/10, 50*time.Millisecond), time.Second)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c WatchdogConfig) Validate() error {
	if c.Imports == nil || c.Waiters == nil || c.Events == nil || c.InTx == nil {
		return errors.New("lookup: watchdog needs imports, waiters, an event publisher and a transactor")
	}
	if c.Deadline < 0 || c.Interval < 0 {
		return errors.New("lookup: negative watchdog setting")
	}
	return nil
}

// Watchdog keeps the lookup deadline: the rows of an import that still
// wait for lookups --lookup-deadline after its last job was counted stop
// waiting, as skipped (deadline). It does not complete the import itself:
// it publishes how many rows stopped waiting on the job.projected topic,
// like the lookup projector, so the aggregator completes the import by its
// one rule, exactly once, after counting every earlier message.
type Watchdog struct {
	cfg WatchdogConfig
}

// NewWatchdog validates cfg, fills in its defaults and returns a Watchdog.
func NewWatchdog(cfg WatchdogConfig) (*Watchdog, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Watchdog{cfg: cfg}, nil
}

// Run sweeps until ctx is done, then returns nil. Errors are logged and
// retried at the next sweep.
func (w *Watchdog) Run(ctx context.Context) error {
	return periodic.Run(ctx, w.cfg.Interval, w.Sweep, func(err error) {
		w.cfg.Logger.ErrorContext(ctx, "lookup: deadline sweep", "error", err)
	})
}

// Sweep ends the wait of every overdue import found now.
func (w *Watchdog) Sweep(ctx context.Context) error {
	now := w.cfg.Now()
	ids, err := w.cfg.Imports.Overdue(ctx, now.Add(-w.cfg.Deadline), overdueBatch)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, w.cfg.InTx(ctx, func(ctx context.Context) error { return w.expire(ctx, id, now) }))
	}
	return errors.Join(errs...)
}

// expire ends the wait of one import's rows, if it is overdue, in the unit
// of work of ctx.
func (w *Watchdog) expire(ctx context.Context, id string, now time.Time) error {
	im, err := w.cfg.Imports.Load(ctx, id)
	if err != nil {
		return err
	}
	if !im.LookupsOverdue(now, w.cfg.Deadline) {
		return nil
	}
	ev, err := w.cfg.Waiters.SkipWaiters(ctx, id, domain.SkippedLookup(domain.LookupReasonDeadline, now))
	if err != nil || ev == nil {
		return err // nil: none waits any more; the counts are on their way
	}
	ev.Key = "deadline-" + uuid.NewString()
	w.cfg.Logger.InfoContext(ctx, "lookup: deadline passed, rows stop waiting", "import", id, "rows", ev.Counts.Processed)
	return w.cfg.Events.Publish(ctx, ev)
}
