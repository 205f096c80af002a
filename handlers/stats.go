package handlers

import (
	"context"

	"github.com/phonepipe/phonepipe/domain"
)

// StatsName names the carrier statistics handler and its consumer group.
// A new consumer group reads its topic from the first message, so a
// deployment that adds this handler fills the statistics from the whole
// history before it follows live. Never rename it.
const StatsName = "stats"

// StatsProjector counts numbers per carrier and region.
type StatsProjector interface {
	Project(ctx context.Context, m domain.NumbersRecorded) error
}

// Stats keeps the carrier and region statistics of recorded numbers. It
// publishes nothing: nothing waits for it.
type Stats struct {
	Stats  StatsProjector
	Dedupe Deduper
}

// HandlerName names the handler and its consumer group.
func (s Stats) HandlerName() string { return StatsName }

// Handle counts the numbers of one job, once.
func (s Stats) Handle(ctx context.Context, m *domain.NumbersRecorded) error {
	first, err := s.Dedupe.FirstTime(ctx, StatsName, domain.JobKey(m.ImportID, m.Job))
	if err != nil || !first {
		return err
	}
	return s.Stats.Project(ctx, *m)
}
