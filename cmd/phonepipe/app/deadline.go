package app

import (
	"context"

	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// wireDeadline makes the import deadline watchdog of the aggregate role,
// when --import-deadline is on (see handlers.DeadlineWatchdog).
func (a *App) wireDeadline(imports *projections.Imports, events handlers.EventPublisher, handled handlers.Deduper) error {
	if !a.cfg.has(RoleAggregate) || a.cfg.ImportDeadline <= 0 {
		return nil
	}
	w, err := handlers.NewDeadlineWatchdog(handlers.DeadlineWatchdogConfig{
		Deadline: a.cfg.ImportDeadline,
		JobSize:  a.cfg.JobSize,
		Imports:  imports,
		Rows:     storage.NewUploads(a.db),
		Streams:  storage.NewStreamHeads(a.db),
		Events:   events,
		Dedupe:   handled,
		InTx: func(ctx context.Context, fn func(ctx context.Context) error) error {
			return storage.InTx(ctx, a.db.Write, fn)
		},
		Logger:   a.logger,
		Observer: a.metrics.ImportDeadline(),
	})
	if err != nil {
		return err
	}
	a.deadline = w
	return nil
}
