package domain

import (
	"encoding/json"
	"time"

	"github.com/phonepipe/phonepipe/domain/phone"
)

// Every message name carries its schema version. Topics are derived from
// these names by the transport layer; handlers only see the typed structs.
const (
	NameImportAccepted   = "import.accepted.v1"
	NameValidateJob      = "job.validate.v1"
	NameNumbersRecorded  = "numbers.recorded.v1"
	NameJobProjected     = "job.projected.v1"
	NameImportProgressed = "import.progressed.v1"
	NameImportCompleted  = "import.completed.v1"

	// EventNumberValidated is the type of a per-number event carrying the
	// outcome of parsing, validating and enriching one row.
	EventNumberValidated = "number.validated.v1"
)

// ImportAccepted is published when an upload has been durably stored.
type ImportAccepted struct {
	ImportID      string    `json:"import_id"`
	Tenant        string    `json:"tenant"`
	Total         int       `json:"total"`
	DefaultRegion string    `json:"default_region,omitempty"`
	AcceptedAt    time.Time `json:"accepted_at"`
}

// Name is the versioned message name.
func (ImportAccepted) Name() string { return NameImportAccepted }

// ValidateJob asks a validator to process rows FirstRow..LastRow of an import.
type ValidateJob struct {
	ImportID      string `json:"import_id"`
	Tenant        string `json:"tenant"`
	Job           int    `json:"job"`
	FirstRow      int    `json:"first_row"`
	LastRow       int    `json:"last_row"`
	DefaultRegion string `json:"default_region,omitempty"`
}

// Name is the versioned message name.
func (ValidateJob) Name() string { return NameValidateJob }

// JobKey is the idempotency key of one job of one import.
func (j ValidateJob) JobKey() string { return JobKey(j.ImportID, j.Job) }

// NumberEvent is one event of one stream. Many of them travel together in a
// NumbersRecorded message, each keeping its own identity and version.
type NumberEvent struct {
	ID         string          `json:"id"`
	Stream     StreamID        `json:"stream"`
	Version    int64           `json:"version"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	ImportID   string          `json:"import_id"`
	Data       json.RawMessage `json:"data"`
}

// NumbersRecorded carries the per-number events a validator appended for one
// job, in row order.
type NumbersRecorded struct {
	ImportID string        `json:"import_id"`
	Tenant   string        `json:"tenant"`
	Job      int           `json:"job"`
	Events   []NumberEvent `json:"events"`
}

// Name is the versioned message name.
func (NumbersRecorded) Name() string { return NameNumbersRecorded }

// NumberValidated is the data of a number.validated.v1 event: one row's
// outcome. Its JSON is the row as served by the results endpoint, less the
// fields computed across rows (duplicate_of) or by later stages (lookup).
type NumberValidated struct {
	Row    int    `json:"row"`
	Input  string `json:"input"`
	Ref    string `json:"ref,omitempty"`
	Region string `json:"region,omitempty"`
	phone.Result
	// Detail says why a row is PROCESSING_FAILED when something other than
	// the phone rule failed it (e.g. the import deadline).
	Detail string `json:"detail,omitempty"`
}

// JobProjected says the results of one job are readable. With Kind
// ProjectedLookups it says instead that rows stopped waiting for lookups
// (Job is 0, Key identifies the message); both kinds share one topic, so
// an import's rows are never counted done before their job is counted.
type JobProjected struct {
	ImportID string `json:"import_id"`
	Tenant   string `json:"tenant"`
	Job      int    `json:"job"`
	Counts   Counts `json:"counts"`
	Kind     string `json:"kind,omitempty"`
	Key      string `json:"key,omitempty"`
}

// Name is the versioned message name.
func (JobProjected) Name() string { return NameJobProjected }

// ImportProgressed is published each time the aggregator counts a job.
type ImportProgressed struct {
	Tenant     string        `json:"tenant"`
	WebhookURL string        `json:"webhook_url,omitempty"`
	Import     ImportSummary `json:"import"`
}

// Name is the versioned message name.
func (ImportProgressed) Name() string { return NameImportProgressed }

// ImportCompleted is published exactly once per import, after every row's
// result is readable.
type ImportCompleted struct {
	Tenant     string        `json:"tenant"`
	WebhookURL string        `json:"webhook_url,omitempty"`
	Import     ImportSummary `json:"import"`
}

// Name is the versioned message name.
func (ImportCompleted) Name() string { return NameImportCompleted }
