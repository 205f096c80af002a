package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// TestLockOrInsertTakesRowsInKeyOrder replays, on PostgreSQL, the
// interleaving that deadlocked the projections' transactions on
// kafka+postgres. Row "b" exists. Transaction 1 locks "b". Transaction 2
// takes "b" and a new "c" in one batch and has to wait for 1. Transaction 1
// then takes "c". Inserting a batch's missing rows first and locking the
// others after (the MySQL way) has 2 hold "c" while it waits for "b", and 1
// then waits for 2: PostgreSQL detects the deadlock and fails one of them.
// LockOrInsert takes "b" before "c", so 1 inserts "c" and both commit.
func TestLockOrInsertTakesRowsInKeyOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := storage.OpenPostgres(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := db.Dialect
	mustExec(t, db.Write, `CREATE TABLE places (tenant VARCHAR(64) NOT NULL, e164 VARCHAR(32) NOT NULL,
		version BIGINT NOT NULL, PRIMARY KEY (tenant, e164))`)
	columns := []string{"tenant", "e164", "version"}

	insertThenLock := func(ctx context.Context, tx *sql.Tx, keys ...string) error {
		if _, err := tx.ExecContext(ctx, d.Rebind(d.InsertIgnore("places", columns, len(keys))), rowArgs(keys)...); err != nil {
			return err
		}
		isKey, in := storage.OneOf(d, "e164", keys)
		rows, err := tx.QueryContext(ctx, d.Rebind(`SELECT e164 FROM places WHERE tenant = 't' AND `+isKey+
			` ORDER BY e164 FOR UPDATE`), in...)
		if err != nil {
			return err
		}
		return drainRows(rows, len(keys))
	}
	lockOrInsert := func(ctx context.Context, tx *sql.Tx, keys ...string) error {
		rows, err := tx.QueryContext(ctx, d.Rebind(d.LockOrInsert("places", columns, len(keys), "tenant", "e164")+
			` RETURNING e164`), rowArgs(keys)...)
		if err != nil {
			return err
		}
		return drainRows(rows, len(keys))
	}

	for _, tc := range []struct {
		name         string
		take         func(ctx context.Context, tx *sql.Tx, keys ...string) error
		wantDeadlock bool
	}{
		{"insert the missing rows, then lock the others", insertThenLock, true},
		{"LockOrInsert", lockOrInsert, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustExec(t, db.Write, `DELETE FROM places`)
			mustExec(t, db.Write, `INSERT INTO places VALUES ('t', 'b', 1)`)
			tx1, err := db.Write.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx1.Rollback()
			if err := tc.take(ctx, tx1, "b"); err != nil {
				t.Fatal(err)
			}
			tx2, err := db.Write.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx2.Rollback()
			var pid2 int
			if err := tx2.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid2); err != nil {
				t.Fatal(err)
			}
			second := make(chan error, 1)
			go func() { second <- tc.take(ctx, tx2, "b", "c") }()
			waitUntilBlocked(t, ctx, db.Write, pid2)

			err1 := tc.take(ctx, tx1, "c")
			if err1 == nil {
				err1 = tx1.Commit()
			} else {
				_ = tx1.Rollback()
			}
			err2 := <-second
			if err2 == nil {
				err2 = tx2.Commit()
			}
			deadlocked := isDeadlock(err1) || isDeadlock(err2)
			if deadlocked != tc.wantDeadlock {
				t.Fatalf("deadlock %v, want %v (first: %v, second: %v)", deadlocked, tc.wantDeadlock, err1, err2)
			}
			if !tc.wantDeadlock && (err1 != nil || err2 != nil) {
				t.Fatalf("first: %v, second: %v; want both committed", err1, err2)
			}
		})
	}
}

func rowArgs(keys []string) []any {
	var args []any
	for _, k := range keys {
		args = append(args, "t", k, 0)
	}
	return args
}

func drainRows(rows *sql.Rows, want int) error {
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("took %d rows, want %d", n, want)
	}
	return nil
}

// waitUntilBlocked waits until the backend pid waits for a lock.
func waitUntilBlocked(t *testing.T, ctx context.Context, db *sql.DB, pid int) {
	t.Helper()
	for {
		var waiting bool
		if err := db.QueryRowContext(ctx, `SELECT COALESCE(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`,
			pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the second transaction never waited for the first")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isDeadlock(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "40P01"
}
