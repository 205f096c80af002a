package handlers

import (
	"context"
	"time"

	"github.com/phonepipe/phonepipe/domain"
)

// SalvagerName names the poison-queue handler for validation jobs.
const SalvagerName = "salvage-validate"

// Salvager reads validation jobs from the poison queue — jobs that failed
// every retry — and records each of their rows as PROCESSING_FAILED, so the
// import still counts every row and completes.
type Salvager struct {
	Rows    RowSource
	Streams StreamVersions
	Events  EventPublisher
	Dedupe  Deduper
	Now     func() time.Time
}

// HandlerName names the handler and its consumer group.
func (s Salvager) HandlerName() string { return SalvagerName }

// Handle fails every row of a poisoned job.
func (s Salvager) Handle(ctx context.Context, job *domain.ValidateJob) error {
	// Claim the job under the validator's own key: if the validator did
	// finish it after all, there is nothing to salvage.
	first, err := s.Dedupe.FirstTime(ctx, ValidatorName, job.JobKey())
	if err != nil || !first {
		return err
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	_, err = failJob(ctx, s.Rows, s.Streams, s.Events, *job, now, "")
	return err
}
