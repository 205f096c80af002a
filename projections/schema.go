package projections

import (
	"context"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// Migrate creates the projection tables (those of CarrierStats too).
func Migrate(ctx context.Context, db *storage.DB) error {
	if err := MigrateLookups(ctx, db); err != nil {
		return err
	}
	return db.Exec(ctx, append([]string{
		`CREATE TABLE IF NOT EXISTS imports (
			id VARCHAR(64) NOT NULL PRIMARY KEY,
			tenant VARCHAR(64) NOT NULL,
			status VARCHAR(16) NOT NULL,
			total INTEGER NOT NULL,
			jobs INTEGER NOT NULL DEFAULT 0,
			jobs_done INTEGER NOT NULL DEFAULT 0,
			processed INTEGER NOT NULL DEFAULT 0,
			valid INTEGER NOT NULL DEFAULT 0,
			invalid INTEGER NOT NULL DEFAULT 0,
			duplicates INTEGER NOT NULL DEFAULT 0,
			failed INTEGER NOT NULL DEFAULT 0,
			default_region VARCHAR(8) NOT NULL DEFAULT '',
			webhook_url TEXT NOT NULL,
			seq BIGINT NOT NULL DEFAULT 0,
			created_at VARCHAR(40) NOT NULL,
			completed_at VARCHAR(40),
			phone_metadata VARCHAR(64) NOT NULL DEFAULT '',
			idempotency_key VARCHAR(191))`,
		`CREATE UNIQUE INDEX IF NOT EXISTS imports_idempotency ON imports (tenant, idempotency_key)`,
		// The import deadline watchdog's sweep: open imports by age.
		`CREATE INDEX IF NOT EXISTS imports_open ON imports (status, created_at)`,
		`CREATE TABLE IF NOT EXISTS results (
			import_id VARCHAR(64) NOT NULL,
			row_num INTEGER NOT NULL,
			e164 VARCHAR(32) NOT NULL,
			data TEXT NOT NULL,
			PRIMARY KEY (import_id, row_num))`,
		`CREATE TABLE IF NOT EXISTS import_numbers (
			import_id VARCHAR(64) NOT NULL,
			e164 VARCHAR(32) NOT NULL,
			first_row INTEGER NOT NULL,
			seen INTEGER NOT NULL,
			PRIMARY KEY (import_id, e164))`,
		`CREATE TABLE IF NOT EXISTS numbers (
			tenant VARCHAR(64) NOT NULL,
			e164 VARCHAR(32) NOT NULL,
			version BIGINT NOT NULL,
			first_seen VARCHAR(40) NOT NULL,
			last_seen VARCHAR(40) NOT NULL,
			state TEXT NOT NULL,
			PRIMARY KEY (tenant, e164))`,
		// The imports of a number are read from its events (see
		// Numbers.Number); the table that listed them is gone.
		`DROP TABLE IF EXISTS number_imports`,
		`CREATE TABLE IF NOT EXISTS number_events (
			stream_id VARCHAR(191) NOT NULL,
			version BIGINT NOT NULL,
			id VARCHAR(64) NOT NULL,
			type VARCHAR(64) NOT NULL,
			occurred_at VARCHAR(40) NOT NULL,
			import_id VARCHAR(64) NOT NULL,
			data TEXT NOT NULL,
			PRIMARY KEY (stream_id, version))`,
		// Events that arrived before their predecessor, until it is
		// projected (see Numbers).
		`CREATE TABLE IF NOT EXISTS number_events_parked (
			stream_id VARCHAR(191) NOT NULL,
			version BIGINT NOT NULL,
			id VARCHAR(64) NOT NULL,
			type VARCHAR(64) NOT NULL,
			occurred_at VARCHAR(40) NOT NULL,
			import_id VARCHAR(64) NOT NULL,
			data TEXT NOT NULL,
			PRIMARY KEY (stream_id, version))`,
	}, statsTables()...))
}
