package domain

import (
	"fmt"
	"time"
)

// ImportStatus is where an import is in its life.
type ImportStatus string

// The statuses of an import, in the only order they can happen.
const (
	StatusAccepted   ImportStatus = "accepted"
	StatusProcessing ImportStatus = "processing"
	StatusCompleted  ImportStatus = "completed"
)

// Counts are the row outcomes of a job or an import. Every processed row is
// exactly one of valid, invalid or failed; duplicates counts the processed
// rows whose E.164 already appeared earlier in the same import (a subset of
// valid+invalid). Awaiting counts valid rows that are projected but wait
// for a third-party lookup: they are in none of the other counts until it
// ends (see import_lookups.go).
type Counts struct {
	Processed  int `json:"processed"`
	Valid      int `json:"valid"`
	Invalid    int `json:"invalid"`
	Duplicates int `json:"duplicates"`
	Failed     int `json:"failed"`
	Awaiting   int `json:"awaiting,omitempty"`
}

// Add returns the sum of two counts.
func (c Counts) Add(o Counts) Counts {
	return Counts{
		Processed:  c.Processed + o.Processed,
		Valid:      c.Valid + o.Valid,
		Invalid:    c.Invalid + o.Invalid,
		Duplicates: c.Duplicates + o.Duplicates,
		Failed:     c.Failed + o.Failed,
		Awaiting:   c.Awaiting + o.Awaiting,
	}
}

// Check verifies the internal consistency of counts.
func (c Counts) Check() error {
	if c.Processed < 0 || c.Valid < 0 || c.Invalid < 0 || c.Duplicates < 0 || c.Failed < 0 || c.Awaiting < 0 {
		return fmt.Errorf("%w: negative count in %+v", ErrInvariant, c)
	}
	if c.Valid+c.Invalid+c.Failed != c.Processed {
		return fmt.Errorf("%w: valid+invalid+failed != processed in %+v", ErrInvariant, c)
	}
	if c.Duplicates > c.Valid+c.Invalid {
		return fmt.Errorf("%w: more duplicates than parsed rows in %+v", ErrInvariant, c)
	}
	return nil
}

// ImportSummary is the public view of an import (GET /v1/imports/{id}).
type ImportSummary struct {
	ID          string       `json:"id"`
	Status      ImportStatus `json:"status"`
	Total       int          `json:"total"`
	Processed   int          `json:"processed"`
	Valid       int          `json:"valid"`
	Invalid     int          `json:"invalid"`
	Duplicates  int          `json:"duplicates"`
	Failed      int          `json:"failed"`
	CreatedAt   time.Time    `json:"created_at"`
	CompletedAt *time.Time   `json:"completed_at"`
	// Seq increases by one with every change of state; live progress uses
	// it as the message sequence.
	Seq int64 `json:"seq"`
	// PhoneMetadata is the phone library (and metadata) version the import
	// was accepted with, so results can be tied to the rules that made them.
	PhoneMetadata string `json:"phone_metadata,omitempty"`
}

// Import is the aggregator's state of one import and the rules that move it.
type Import struct {
	ID            string
	Tenant        string
	Status        ImportStatus
	Total         int
	Jobs          int
	JobsDone      int
	Counts        Counts
	DefaultRegion string
	WebhookURL    string
	PhoneMetadata string
	Seq           int64
	CreatedAt     time.Time
	CompletedAt   *time.Time
	// ValidatedAt is when the last job was counted while rows still
	// awaited lookups: the start of the lookup deadline.
	ValidatedAt *time.Time
}

// NewImport creates an accepted import of total rows.
func NewImport(id, tenant string, total int, createdAt time.Time) (Import, error) {
	if id == "" || tenant == "" {
		return Import{}, fmt.Errorf("%w: import needs an id and a tenant", ErrInvariant)
	}
	if total <= 0 {
		return Import{}, fmt.Errorf("%w: import %s has no rows", ErrInvariant, id)
	}
	return Import{ID: id, Tenant: tenant, Status: StatusAccepted, Total: total, CreatedAt: createdAt.UTC()}, nil
}

// Start moves an accepted import to processing, split into jobs jobs.
// Starting an import that is already processing with the same job count is
// a no-op, so redelivered split commands are harmless.
func (im *Import) Start(jobs int) error {
	if jobs <= 0 || jobs > im.Total {
		return fmt.Errorf("%w: import %s: %d jobs for %d rows", ErrInvariant, im.ID, jobs, im.Total)
	}
	switch im.Status {
	case StatusAccepted:
		im.Status = StatusProcessing
		im.Jobs = jobs
		im.Seq++
		return nil
	case StatusProcessing, StatusCompleted:
		if im.Jobs != jobs {
			return fmt.Errorf("%w: import %s already split into %d jobs, not %d", ErrInvariant, im.ID, im.Jobs, jobs)
		}
		return nil
	default:
		return fmt.Errorf("%w: import %s has unknown status %q", ErrInvariant, im.ID, im.Status)
	}
}

// ApplyJob counts one finished job. The caller guarantees each job is applied
// once (idempotency is a storage concern). It reports whether this job
// completed the import: that happens when the last job is counted and no
// row awaits a lookup (else ApplyLookups completes it), and then processed
// equals total.
func (im *Import) ApplyJob(c Counts, at time.Time) (completed bool, err error) {
	if err := c.Check(); err != nil {
		return false, err
	}
	if im.Status != StatusProcessing {
		return false, fmt.Errorf("%w: import %s is %s, cannot count a job", ErrInvariant, im.ID, im.Status)
	}
	next := im.Counts.Add(c)
	if next.Rows() > im.Total || im.JobsDone+1 > im.Jobs {
		return false, fmt.Errorf("%w: import %s would have %d/%d rows and %d/%d jobs",
			ErrInvariant, im.ID, next.Rows(), im.Total, im.JobsDone+1, im.Jobs)
	}
	lastJob := im.JobsDone+1 == im.Jobs
	if lastJob && next.Rows() != im.Total {
		return false, fmt.Errorf("%w: import %s finished its jobs with %d of %d rows",
			ErrInvariant, im.ID, next.Rows(), im.Total)
	}
	im.Counts = next
	im.JobsDone++
	im.Seq++
	if lastJob {
		return im.jobsCounted(at), nil
	}
	return false, nil
}

// Summary is the public view of the import.
func (im Import) Summary() ImportSummary {
	return ImportSummary{
		ID:            im.ID,
		Status:        im.Status,
		Total:         im.Total,
		Processed:     im.Counts.Processed,
		Valid:         im.Counts.Valid,
		Invalid:       im.Counts.Invalid,
		Duplicates:    im.Counts.Duplicates,
		Failed:        im.Counts.Failed,
		CreatedAt:     im.CreatedAt,
		CompletedAt:   im.CompletedAt,
		Seq:           im.Seq,
		PhoneMetadata: im.PhoneMetadata,
	}
}

// JobKey is the idempotency key of job number job of an import.
func JobKey(importID string, job int) string {
	return fmt.Sprintf("%s/%d", importID, job)
}

// Split divides total rows into jobs of at most size rows. It returns the
// 1-based inclusive row ranges, in order.
func Split(total, size int) [][2]int {
	if total <= 0 || size <= 0 {
		return nil
	}
	out := make([][2]int, 0, (total+size-1)/size)
	for first := 1; first <= total; first += size {
		out = append(out, [2]int{first, min(first+size-1, total)})
	}
	return out
}

// EffectiveRegion applies the region precedence: the row's own region, else
// the import's default, else the server's default.
func EffectiveRegion(row, importDefault, serverDefault string) string {
	switch {
	case row != "":
		return row
	case importDefault != "":
		return importDefault
	default:
		return serverDefault
	}
}

// OutcomeOf classifies one validated row for counting.
func OutcomeOf(v NumberValidated) Counts {
	c := Counts{Processed: 1}
	switch {
	case v.Reason == ReasonProcessingFailed:
		c.Failed = 1
	case v.Valid:
		c.Valid = 1
	default:
		c.Invalid = 1
	}
	return c
}

// ReasonProcessingFailed is the reason of a row that could not be processed.
const ReasonProcessingFailed = "PROCESSING_FAILED"
