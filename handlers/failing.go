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

// failJob records every row of job as PROCESSING_FAILED, with detail, in
// the unit of work of ctx: one number.validated.v1 event per row on the
// row's own stream (tenant/row/<import>/<row>), published as the job's
// NumbersRecorded, so the projector makes the rows readable and the
// aggregator counts them like any other job. The caller has claimed the
// job under the validator's key. It returns how many rows it failed.
func failJob(ctx context.Context, rowSource RowSource, versions StreamVersions, events EventPublisher,
	job domain.ValidateJob, now time.Time, detail string) (int, error) {
	rows, err := rowSource.Rows(ctx, job.ImportID, job.FirstRow, job.LastRow)
	if err != nil {
		return 0, err
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
		v.Detail = detail
		failed[i] = v
		streams[i] = domain.RowStream(job.Tenant, job.ImportID, row)
	}
	next, err := versions.Next(ctx, streams)
	if err != nil {
		return 0, err
	}
	now = now.UTC()
	out := &domain.NumbersRecorded{ImportID: job.ImportID, Tenant: job.Tenant, Job: job.Job, Events: make([]domain.NumberEvent, n)}
	for i, v := range failed {
		data, err := json.Marshal(v)
		if err != nil {
			return 0, fmt.Errorf("encode failed row %d of %s: %w", v.Row, job.ImportID, err)
		}
		out.Events[i] = domain.NumberEvent{ID: uuid.NewString(), Stream: streams[i], Version: next[i],
			Type: domain.EventNumberValidated, OccurredAt: now, ImportID: job.ImportID, Data: data}
	}
	if err := events.Publish(ctx, out); err != nil {
		return 0, fmt.Errorf("publish failed job %d of %s: %w", job.Job, job.ImportID, err)
	}
	return n, nil
}
