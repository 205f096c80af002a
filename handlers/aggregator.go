package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/phonepipe/phonepipe/domain"
)

// Aggregator counts projected jobs per import and completes the import,
// exactly once, when the last one is counted.
type Aggregator struct {
	Imports ImportStore
	Events  EventPublisher
	Dedupe  Deduper
	Now     func() time.Time
	// Observer, if set, sees every counted job (metrics).
	Observer Observer
}

// HandlerName names the handler and its consumer group.
func (a Aggregator) HandlerName() string { return AggregatorName }

// Handle counts one job, or rows whose lookups ended (see domain.JobProjected).
func (a Aggregator) Handle(ctx context.Context, ev *domain.JobProjected) error {
	first, err := a.Dedupe.FirstTime(ctx, AggregatorName, ev.CountKey())
	if err != nil || !first {
		return err
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	var completed bool
	im, err := a.Imports.Update(ctx, ev.ImportID, func(im *domain.Import) error {
		var err error
		completed, err = im.ApplyProjected(*ev, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("count job %d of %s: %w", ev.Job, ev.ImportID, err)
	}
	if a.Observer != nil {
		a.Observer.JobCounted(ev.Counts)
		if completed {
			a.Observer.ImportCompleted(im.Summary())
		}
	}
	if completed {
		return a.Events.Publish(ctx, &domain.ImportCompleted{Tenant: im.Tenant, WebhookURL: im.WebhookURL, Import: im.Summary()})
	}
	return a.Events.Publish(ctx, &domain.ImportProgressed{Tenant: im.Tenant, WebhookURL: im.WebhookURL, Import: im.Summary()})
}
