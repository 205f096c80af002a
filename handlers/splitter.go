package handlers

import (
	"context"
	"fmt"

	"github.com/phonepipe/phonepipe/domain"
)

// DefaultJobSize is how many rows one validation job carries.
const DefaultJobSize = 500

// Splitter turns an accepted import into validation jobs.
type Splitter struct {
	Imports  ImportStore
	Commands CommandSender
	Dedupe   Deduper
	JobSize  int
}

// HandlerName names the handler and its consumer group.
func (s Splitter) HandlerName() string { return SplitterName }

// Handle splits ev's import into jobs of JobSize rows.
func (s Splitter) Handle(ctx context.Context, ev *domain.ImportAccepted) error {
	first, err := s.Dedupe.FirstTime(ctx, SplitterName, ev.ImportID)
	if err != nil || !first {
		return err
	}
	size := s.JobSize
	if size <= 0 {
		size = DefaultJobSize
	}
	ranges := domain.Split(ev.Total, size)
	if _, err := s.Imports.Update(ctx, ev.ImportID, func(im *domain.Import) error {
		return im.Start(len(ranges))
	}); err != nil {
		return fmt.Errorf("start import %s: %w", ev.ImportID, err)
	}
	for i, r := range ranges {
		job := &domain.ValidateJob{
			ImportID:      ev.ImportID,
			Tenant:        ev.Tenant,
			Job:           i + 1,
			FirstRow:      r[0],
			LastRow:       r[1],
			DefaultRegion: ev.DefaultRegion,
		}
		if err := s.Commands.Send(ctx, job); err != nil {
			return fmt.Errorf("send job %d of %s: %w", job.Job, ev.ImportID, err)
		}
	}
	return nil
}
