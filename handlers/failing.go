package handlers

import (
	"context"
	"time"

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
	if err := recordOutcomes(ctx, versions, events, &job, failed, streams, now); err != nil {
		return 0, err
	}
	return n, nil
}
