package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
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
	rows, err := s.Rows.Rows(ctx, job.ImportID, job.FirstRow, job.LastRow)
	if err != nil {
		return err
	}
	byRow := make(map[int]domain.NumberValidated, len(rows))
	for _, r := range rows {
		byRow[r.Row] = domain.NumberValidated{Row: r.Row, Input: r.Input, Ref: r.Ref, Region: r.Region}
	}
	n := job.LastRow - job.FirstRow + 1
	streams := make([]domain.StreamID, n)
	failed := make([]domain.NumberValidated, n)
	for i := range n {
		row := job.FirstRow + i
		v, ok := byRow[row]
		if !ok {
			v = domain.NumberValidated{Row: row}
		}
		v.Result = phone.Result{Reason: phone.ReasonProcessingFailed}
		failed[i] = v
		streams[i] = domain.RowStream(job.Tenant, job.ImportID, row)
	}
	versions, err := s.Streams.Next(ctx, streams)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	out := &domain.NumbersRecorded{ImportID: job.ImportID, Tenant: job.Tenant, Job: job.Job, Events: make([]domain.NumberEvent, n)}
	for i, v := range failed {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode failed row %d of %s: %w", v.Row, job.ImportID, err)
		}
		out.Events[i] = domain.NumberEvent{ID: uuid.NewString(), Stream: streams[i], Version: versions[i],
			Type: domain.EventNumberValidated, OccurredAt: now, ImportID: job.ImportID, Data: data}
	}
	return s.Events.Publish(ctx, out)
}
