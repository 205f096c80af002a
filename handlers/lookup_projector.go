package handlers

import (
	"context"
	"fmt"

	"github.com/phonepipe/phonepipe/domain"
)

// LookupProjectorName names the lookup projector and its consumer group.
const LookupProjectorName = "project-lookups"

// LookupProjector applies the lookups a lookup worker recorded: it appends
// them to their number streams, gives every row that waited for one its
// result, and tells the aggregator, per import, how many rows stopped
// waiting (on the job.projected topic, so they are counted after the jobs
// that made them wait).
type LookupProjector struct {
	Lookups LookupResolver
	Events  EventPublisher
	Dedupe  Deduper
}

// HandlerName names the handler and its consumer group.
func (p LookupProjector) HandlerName() string { return LookupProjectorName }

// Handle projects one batch of recorded lookups.
func (p LookupProjector) Handle(ctx context.Context, m *domain.LookupsRecorded) error {
	first, err := p.Dedupe.FirstTime(ctx, LookupProjectorName, m.Batch)
	if err != nil || !first {
		return err
	}
	resolved, err := p.Lookups.ProjectLookups(ctx, *m)
	if err != nil {
		return err
	}
	for _, ev := range resolved {
		ev.Key = m.Batch
		if err := p.Events.Publish(ctx, &ev); err != nil {
			return fmt.Errorf("publish lookups of %s done: %w", ev.ImportID, err)
		}
	}
	return nil
}
