package handlers

import (
	"context"
	"fmt"

	"github.com/phonepipe/phonepipe/domain"
)

// Projector applies recorded number events to the read models and says
// when a job's results are readable.
type Projector struct {
	Numbers NumberProjector
	Events  EventPublisher
	Dedupe  Deduper
	// Lookups, when the lookup stage is on, gives valid rows their
	// lookups; rows left waiting are not yet processed.
	Lookups LookupEnqueuer
}

// HandlerName names the handler and its consumer group.
func (p Projector) HandlerName() string { return ProjectorName }

// Handle projects one job's events.
func (p Projector) Handle(ctx context.Context, m *domain.NumbersRecorded) error {
	first, err := p.Dedupe.FirstTime(ctx, ProjectorName, domain.JobKey(m.ImportID, m.Job))
	if err != nil || !first {
		return err
	}
	counts, err := p.Numbers.Project(ctx, *m)
	if err != nil {
		return err
	}
	if p.Lookups != nil {
		if counts, err = p.Lookups.Enqueue(ctx, *m, counts); err != nil {
			return err
		}
	}
	if err := p.Events.Publish(ctx, &domain.JobProjected{
		ImportID: m.ImportID, Tenant: m.Tenant, Job: m.Job, Counts: counts,
	}); err != nil {
		return fmt.Errorf("publish job %d of %s projected: %w", m.Job, m.ImportID, err)
	}
	return nil
}
