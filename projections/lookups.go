package projections

import (
	"context"
	"errors"
	"time"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// MigrateLookups creates the tables of the third-party lookup stage:
//
//   - lookup_calls: one row per tenant and number, the write-side state of
//     its lookup (pending or done, the last outcome, the lease of the
//     worker making it, and a generation that grows each time the number
//     is requested again after its last call ended);
//   - lookup_waiters: the valid rows that wait for a call of their number
//     (and whether each repeats a number earlier in its import);
//   - result_lookups: the `lookup` field of result rows;
//   - number_lookups: each number's last successful lookup (per-number
//     read model);
//   - import_lookups: how many rows of each import still wait, and since
//     when its jobs are all counted (the start of its lookup deadline);
//   - lookup_optouts: imports uploaded with lookups turned off.
//
// Times are Unix milliseconds.
func MigrateLookups(ctx context.Context, db *storage.DB) error {
	return db.Exec(ctx, []string{
		`CREATE TABLE IF NOT EXISTS lookup_calls (
			tenant VARCHAR(64) NOT NULL,
			e164 VARCHAR(32) NOT NULL,
			status VARCHAR(16) NOT NULL,
			generation BIGINT NOT NULL,
			outcome VARCHAR(16) NOT NULL,
			result TEXT NOT NULL,
			done_at BIGINT NOT NULL,
			attempts INTEGER NOT NULL,
			due_at BIGINT NOT NULL,
			lease_until BIGINT NOT NULL,
			lease_token VARCHAR(64) NOT NULL,
			PRIMARY KEY (tenant, e164))`,
		`CREATE INDEX IF NOT EXISTS lookup_calls_due ON lookup_calls (status, due_at)`,
		`CREATE TABLE IF NOT EXISTS lookup_waiters (
			import_id VARCHAR(64) NOT NULL,
			row_num INTEGER NOT NULL,
			tenant VARCHAR(64) NOT NULL,
			e164 VARCHAR(32) NOT NULL,
			generation BIGINT NOT NULL,
			is_repeat INTEGER NOT NULL,
			PRIMARY KEY (import_id, row_num))`,
		`CREATE INDEX IF NOT EXISTS lookup_waiters_number ON lookup_waiters (tenant, e164)`,
		`CREATE TABLE IF NOT EXISTS result_lookups (
			import_id VARCHAR(64) NOT NULL,
			row_num INTEGER NOT NULL,
			data TEXT NOT NULL,
			PRIMARY KEY (import_id, row_num))`,
		`CREATE TABLE IF NOT EXISTS number_lookups (
			tenant VARCHAR(64) NOT NULL,
			e164 VARCHAR(32) NOT NULL,
			version BIGINT NOT NULL,
			done_at BIGINT NOT NULL,
			result TEXT NOT NULL,
			PRIMARY KEY (tenant, e164))`,
		`CREATE TABLE IF NOT EXISTS import_lookups (
			import_id VARCHAR(64) NOT NULL PRIMARY KEY,
			awaiting INTEGER NOT NULL,
			validated_at BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS import_lookups_validated ON import_lookups (validated_at)`,
		`CREATE TABLE IF NOT EXISTS lookup_optouts (
			import_id VARCHAR(64) NOT NULL PRIMARY KEY)`,
	})
}

// Call statuses in lookup_calls.
const (
	callPending = "pending"
	callDone    = "done"
)

// LookupsConfig configures Lookups.
type LookupsConfig struct {
	// TTL is how long a successful lookup answers for its number instead
	// of a new request. Default 24h.
	TTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultLookupTTL is the default of LookupsConfig.TTL.
const DefaultLookupTTL = 24 * time.Hour

func (c *LookupsConfig) setDefaults() {
	if c.TTL == 0 {
		c.TTL = DefaultLookupTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration.
func (c LookupsConfig) Validate() error {
	if c.TTL < 0 {
		return errors.New("projections: negative lookup TTL")
	}
	return nil
}

// Lookups is the SQL side of the lookup stage: enqueuing the lookups of
// projected rows, projecting recorded lookups onto the rows that waited for
// them, and ending the wait of overdue imports. Its writes run in the unit
// of work of the context they get.
type Lookups struct {
	db  *storage.DB
	cfg LookupsConfig
}

// NewLookups returns the lookup stage's store on db.
func NewLookups(db *storage.DB, cfg LookupsConfig) (*Lookups, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Lookups{db: db, cfg: cfg}, nil
}

// millis is t in Unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }
