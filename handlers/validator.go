package handlers

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/internal/wirejson"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// Validator parses, validates and enriches the rows of a job and appends one
// event per row to its stream.
type Validator struct {
	Rows    RowSource
	Streams StreamVersions
	Events  EventPublisher
	Dedupe  Deduper
	Now     func() time.Time
	Workers int
	// Enrich is the phone rule applied to each row; phone.Enrich by default.
	Enrich func(input, region string) phone.Result
	// Prefetch, if set, enriches the next job of an import while this one
	// is written (see Prefetcher).
	Prefetch *Prefetcher
}

// HandlerName names the handler and its consumer group.
func (v Validator) HandlerName() string { return ValidatorName }

// Handle processes one job.
func (v Validator) Handle(ctx context.Context, job *domain.ValidateJob) error {
	first, err := v.Dedupe.FirstTime(ctx, ValidatorName, job.JobKey())
	if err != nil || !first {
		return err
	}
	outcomes, err := v.outcomes(ctx, job)
	if err != nil {
		return err
	}
	streams := make([]domain.StreamID, len(outcomes))
	for i, o := range outcomes {
		if o.E164 != "" {
			streams[i] = domain.NumberStream(job.Tenant, o.E164)
		} else {
			streams[i] = domain.RowStream(job.Tenant, job.ImportID, o.Row)
		}
	}
	return recordOutcomes(ctx, v.Streams, v.Events, job, outcomes, streams, v.now())
}

// recordOutcomes appends one number.validated.v1 event per outcome to its
// stream (streams[i] for outcomes[i]), at the stream's next version, and
// publishes them as the job's NumbersRecorded, in the unit of work of ctx.
func recordOutcomes(ctx context.Context, versions StreamVersions, events EventPublisher, job *domain.ValidateJob,
	outcomes []domain.NumberValidated, streams []domain.StreamID, now time.Time) error {
	next, err := versions.Next(ctx, streams)
	if err != nil {
		return err
	}
	now = now.UTC()
	out := &domain.NumbersRecorded{ImportID: job.ImportID, Tenant: job.Tenant, Job: job.Job,
		Events: make([]domain.NumberEvent, len(outcomes))}
	for i, o := range outcomes {
		data, err := wirejson.Marshal(o)
		if err != nil {
			return fmt.Errorf("encode row %d of %s: %w", o.Row, job.ImportID, err)
		}
		out.Events[i] = domain.NumberEvent{ID: uuid.NewString(), Stream: streams[i], Version: next[i],
			Type: domain.EventNumberValidated, OccurredAt: now, ImportID: job.ImportID, Data: data}
	}
	if err := events.Publish(ctx, out); err != nil {
		return fmt.Errorf("publish job %d of %s: %w", job.Job, job.ImportID, err)
	}
	return nil
}

// outcomes enriches the job's rows, or takes them from the prefetcher, and
// starts prefetching the import's next job.
func (v Validator) outcomes(ctx context.Context, job *domain.ValidateJob) ([]domain.NumberValidated, error) {
	want := job.LastRow - job.FirstRow + 1
	if v.Prefetch != nil {
		defer v.prefetchNext(job, want)
		if out, ok := v.Prefetch.take(job.ImportID, job.FirstRow); ok && len(out) == want &&
			out[0].Row == job.FirstRow && out[want-1].Row == job.LastRow {
			return out, nil
		}
	}
	rows, err := v.Rows.Rows(ctx, job.ImportID, job.FirstRow, job.LastRow)
	if err != nil {
		return nil, err
	}
	if len(rows) != want {
		return nil, fmt.Errorf("job %s: %d of %d rows stored: %w", job.JobKey(), len(rows), want, domain.ErrPermanent)
	}
	return v.enrichAll(rows, job.DefaultRegion), nil
}

// prefetchNext starts enriching the rows after job, as the import's next
// job (same size, or the rest of the upload) will ask for them. It reads
// outside the unit of work: stored rows never change.
func (v Validator) prefetchNext(job *domain.ValidateJob, size int) {
	first, last := job.LastRow+1, job.LastRow+size
	v.Prefetch.start(job.ImportID, first, func() ([]domain.NumberValidated, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rows, err := v.Rows.Rows(ctx, job.ImportID, first, last)
		if err != nil {
			return nil, fmt.Errorf("prefetch rows %d..%d of %s: %w", first, last, job.ImportID, err)
		}
		if len(rows) == 0 {
			return nil, nil // the import has no further job
		}
		return v.enrichAll(rows, job.DefaultRegion), nil
	})
}

func (v Validator) now() time.Time {
	if v.Now != nil {
		return v.Now().UTC()
	}
	return time.Now().UTC()
}

// enrichAll enriches rows on all workers; the CPU-bound part of a job.
func (v Validator) enrichAll(rows []storage.StoredRow, defaultRegion string) []domain.NumberValidated {
	out := make([]domain.NumberValidated, len(rows))
	workers := v.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(rows))
	var wg sync.WaitGroup
	chunk := (len(rows) + workers - 1) / max(workers, 1)
	for start := 0; start < len(rows); start += chunk {
		end := min(start+chunk, len(rows))
		wg.Add(1)
		go func(start, end int) {
			defer wg.Done()
			for i := start; i < end; i++ {
				out[i] = v.enrichRow(rows[i], defaultRegion)
			}
		}(start, end)
	}
	wg.Wait()
	return out
}

// enrichRow enriches one row; a panic in the phone library fails only that
// row, as PROCESSING_FAILED.
func (v Validator) enrichRow(r storage.StoredRow, defaultRegion string) (out domain.NumberValidated) {
	region := domain.EffectiveRegion(r.Region, defaultRegion, "")
	if norm, ok := phone.NormalizeRegion(region); ok {
		region = norm
	}
	out = domain.NumberValidated{Row: r.Row, Input: r.Input, Ref: r.Ref, Region: region}
	defer func() {
		if p := recover(); p != nil {
			out.Result = phone.Result{Reason: phone.ReasonProcessingFailed}
		}
	}()
	enrich := v.Enrich
	if enrich == nil {
		enrich = phone.Enrich
	}
	out.Result = enrich(r.Input, region)
	return out
}
