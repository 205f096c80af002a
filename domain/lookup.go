package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// Names of the lookup stage's message and per-number events.
const (
	// NameLookupsRecorded is the message a lookup worker publishes with a
	// batch of finished lookups.
	NameLookupsRecorded = "lookups.recorded.v1"

	// EventLookupSucceeded is the per-number event of a lookup the
	// provider answered.
	EventLookupSucceeded = "number.lookup_succeeded.v1"
	// EventLookupFailed is the per-number event of a lookup that ended
	// without an answer: failed after bounded retries, or skipped.
	EventLookupFailed = "number.lookup_failed.v1"
)

// IsLookupEvent reports whether a per-number event type belongs to the
// lookup stage (it changes the stream's version, not the number's state).
func IsLookupEvent(eventType string) bool {
	return eventType == EventLookupSucceeded || eventType == EventLookupFailed
}

// LookupStatus is the terminal status of one number's third-party lookup.
type LookupStatus string

// The lookup statuses a result row can show.
const (
	// LookupOK: the provider answered.
	LookupOK LookupStatus = "ok"
	// LookupFailed: the provider did not answer usefully after bounded
	// retries (errors, timeouts, unusable responses).
	LookupFailed LookupStatus = "failed"
	// LookupSkipped: no answer was sought or awaited any longer (circuit
	// open, rate budget exhausted, the import's lookup deadline passed).
	LookupSkipped LookupStatus = "skipped"
)

// Reasons of failed and skipped lookups.
const (
	LookupReasonDeadline        = "deadline"
	LookupReasonCircuitOpen     = "circuit_open"
	LookupReasonRateLimited     = "rate_limited"
	LookupReasonTimeout         = "timeout"
	LookupReasonUnreachable     = "unreachable"
	LookupReasonInvalidResponse = "invalid_response"
	LookupReasonAbandoned       = "abandoned"
)

// Lookup is what the third-party lookup said about a number, as the
// `lookup` field of a result row shows it. Provider fields are set only
// when the provider sent them; Raw keeps a response the mapping does not
// know, bounded in size (RawTruncated when it was too large to keep).
type Lookup struct {
	Status           LookupStatus    `json:"status"`
	Reason           string          `json:"reason,omitempty"`
	Cached           bool            `json:"cached,omitempty"`
	Valid            *bool           `json:"valid,omitempty"`
	ValidationErrors []string        `json:"validation_errors,omitempty"`
	LineType         string          `json:"line_type,omitempty"`
	Carrier          string          `json:"carrier,omitempty"`
	MCC              string          `json:"mcc,omitempty"`
	MNC              string          `json:"mnc,omitempty"`
	CallerName       string          `json:"caller_name,omitempty"`
	CallerType       string          `json:"caller_type,omitempty"`
	Raw              json.RawMessage `json:"raw,omitempty"`
	RawTruncated     bool            `json:"raw_truncated,omitempty"`
	// Attempts is how many requests the provider got for this lookup.
	Attempts   int        `json:"attempts,omitempty"`
	LookedUpAt *time.Time `json:"looked_up_at,omitempty"`
}

// Validate checks that l is a terminal lookup.
func (l Lookup) Validate() error {
	switch l.Status {
	case LookupOK:
		return nil
	case LookupFailed, LookupSkipped:
		if l.Reason == "" {
			return fmt.Errorf("%w: %s lookup without a reason", ErrPermanent, l.Status)
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown lookup status %q", ErrPermanent, l.Status)
	}
}

// EventType is the per-number event type that records l.
func (l Lookup) EventType() string {
	if l.Status == LookupOK {
		return EventLookupSucceeded
	}
	return EventLookupFailed
}

// AsCached returns l as served to a row that reused it instead of asking
// the provider again.
func (l Lookup) AsCached() Lookup {
	l.Cached = true
	return l
}

// FreshFor reports whether l, taken at doneAt, may answer for its number at
// now instead of a new request: only successful lookups are reused, for
// ttl.
func (l Lookup) FreshFor(doneAt, now time.Time, ttl time.Duration) bool {
	return l.Status == LookupOK && !doneAt.IsZero() && now.Sub(doneAt) < ttl
}

// SkippedLookup is the lookup of a row that stopped waiting for reason.
func SkippedLookup(reason string, at time.Time) Lookup {
	at = at.UTC()
	return Lookup{Status: LookupSkipped, Reason: reason, LookedUpAt: &at}
}

// LookupCall is one requested lookup of a tenant's number. Its generation
// grows each time the call is requested again after it ended, so an
// outcome answers exactly the rows that waited for that generation.
type LookupCall struct {
	Tenant     string `json:"tenant"`
	E164       string `json:"e164"`
	Generation int64  `json:"generation"`
	// Attempts counts the claims of this generation (a claim is repeated
	// only when a worker died or lost its lease).
	Attempts int `json:"attempts"`
}

// Stream is the per-number stream the call's outcome is appended to.
func (c LookupCall) Stream() StreamID { return NumberStream(c.Tenant, c.E164) }

// NumberLookedUp is the data of number.lookup_succeeded.v1 and
// number.lookup_failed.v1: the lookup and the call generation it answers.
type NumberLookedUp struct {
	E164       string `json:"e164"`
	Generation int64  `json:"generation"`
	Lookup
}

// RecordedLookup is one finished lookup in a LookupsRecorded message.
type RecordedLookup struct {
	Tenant string      `json:"tenant"`
	Event  NumberEvent `json:"event"`
}

// LookupsRecorded carries a batch of finished lookups, each as the event
// appended to its number's stream.
type LookupsRecorded struct {
	// Batch identifies the message (its idempotency key).
	Batch   string           `json:"batch"`
	Lookups []RecordedLookup `json:"lookups"`
}

// Name is the versioned message name.
func (LookupsRecorded) Name() string { return NameLookupsRecorded }

// DecodeLookupEvent returns the data of a lookup event.
func DecodeLookupEvent(ev NumberEvent) (NumberLookedUp, error) {
	if !IsLookupEvent(ev.Type) {
		return NumberLookedUp{}, fmt.Errorf("event %s: type %q is not a lookup: %w", ev.ID, ev.Type, ErrPermanent)
	}
	var d NumberLookedUp
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return NumberLookedUp{}, fmt.Errorf("event %s: %w: %w", ev.ID, ErrPermanent, err)
	}
	if err := d.Validate(); err != nil {
		return NumberLookedUp{}, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	return d, nil
}
