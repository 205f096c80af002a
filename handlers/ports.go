package handlers

import (
	"context"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// EventPublisher publishes events in the unit of work of ctx.
type EventPublisher interface {
	Publish(ctx context.Context, event any) error
}

// CommandSender sends commands in the unit of work of ctx.
type CommandSender interface {
	Send(ctx context.Context, cmd any) error
}

// Deduper records that a handler applied a message; it reports false when
// the message was applied before.
type Deduper interface {
	FirstTime(ctx context.Context, handler, key string) (bool, error)
}

// ImportStore loads and saves the aggregator's state of an import.
type ImportStore interface {
	Update(ctx context.Context, id string, fn func(*domain.Import) error) (domain.Import, error)
}

// RowSource reads the stored rows of an upload.
type RowSource interface {
	Rows(ctx context.Context, importID string, first, last int) ([]storage.StoredRow, error)
}

// StreamVersions hands out the next version of each stream.
type StreamVersions interface {
	Next(ctx context.Context, streams []domain.StreamID) ([]int64, error)
}

// NumberProjector applies recorded number events to the read models.
type NumberProjector interface {
	Project(ctx context.Context, m domain.NumbersRecorded) (domain.Counts, error)
}

// Observer is told about counted jobs and completed imports, for metrics.
// It must be fast and must not fail.
type Observer interface {
	JobCounted(c domain.Counts)
	ImportCompleted(s domain.ImportSummary)
}
