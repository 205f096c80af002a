package storage

import (
	"context"
	"fmt"
)

// Migrate creates the tables owned by this package: uploaded rows, the
// per-handler record of handled messages (idempotency) and the heads of the
// per-number event streams (the validators' write-side state).
func (d *DB) Migrate(ctx context.Context) error {
	return d.Exec(ctx, []string{
		`CREATE TABLE IF NOT EXISTS import_rows (
			import_id VARCHAR(64) NOT NULL,
			row_num INTEGER NOT NULL,
			input TEXT NOT NULL,
			region VARCHAR(8) NOT NULL,
			ref TEXT NOT NULL,
			PRIMARY KEY (import_id, row_num))`,
		`CREATE TABLE IF NOT EXISTS handled_messages (
			handler VARCHAR(64) NOT NULL,
			msg_key VARCHAR(191) NOT NULL,
			PRIMARY KEY (handler, msg_key))`,
		`CREATE TABLE IF NOT EXISTS stream_heads (
			stream_id VARCHAR(191) NOT NULL PRIMARY KEY,
			version BIGINT NOT NULL)`,
	})
}

// Exec runs DDL statements in order, adapted to the dialect (see ddl).
func (d *DB) Exec(ctx context.Context, stmts []string) error {
	for _, s := range stmts {
		if err := d.execDDL(ctx, s); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}
