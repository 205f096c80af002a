package handlers

import (
	"context"

	"github.com/phonepipe/phonepipe/domain"
)

// LookupEnqueuer gives the valid rows of a projected job their third-party
// lookups, in the unit of work of ctx: at once when a fresh one is known,
// else by making them wait for a call. It returns counts with the waiting
// rows moved from processed to awaiting.
type LookupEnqueuer interface {
	Enqueue(ctx context.Context, m domain.NumbersRecorded, counts domain.Counts) (domain.Counts, error)
}

// LookupResolver applies recorded lookups to the read models and to the
// rows that waited for them, in the unit of work of ctx. It returns per
// import the count of rows that stopped waiting (Kind ProjectedLookups,
// without Key).
type LookupResolver interface {
	ProjectLookups(ctx context.Context, m domain.LookupsRecorded) ([]domain.JobProjected, error)
}
