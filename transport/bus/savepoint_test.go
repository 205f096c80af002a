package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// TestFailedAttemptsLeaveNoWrites: a message's first attempt runs without
// a savepoint, later ones inside one. Whatever way the attempts before the
// last one fail (an error, a panic), none of their writes is committed:
// the handler's row is written exactly once, by the attempt that
// succeeds, and a message that never succeeds is poisoned with none.
func TestFailedAttemptsLeaveNoWrites(t *testing.T) {
	errFlaky := errors.New("flaky")
	cases := []struct {
		name string
		// fail decides the outcome of attempt n (from 1) after its write.
		fail         func(n int32) error
		wantAttempts int32
		wantRows     int
		wantPoisoned int64
	}{
		{"succeeds at once", func(int32) error { return nil }, 1, 1, 0},
		{"first attempt fails", func(n int32) error {
			if n == 1 {
				return errFlaky
			}
			return nil
		}, 2, 1, 0},
		{"first attempt panics", func(n int32) error {
			if n == 1 {
				panic("boom")
			}
			return nil
		}, 2, 1, 0},
		{"retried in savepoints", func(n int32) error {
			if n <= 3 {
				return errFlaky
			}
			return nil
		}, 4, 1, 0},
		{"panics in a savepoint", func(n int32) error {
			switch n {
			case 1:
				return errFlaky
			case 2:
				panic("boom")
			}
			return nil
		}, 3, 1, 0},
		// One attempt without a savepoint, then the redelivery, which
		// the permanent error sends to the poison queue at once.
		{"permanent", func(int32) error { return fmt.Errorf("bad: %w", domain.ErrPermanent) }, 2, 0, 1},
		// One attempt, then MaxRetries + 1 in savepoints.
		{"never succeeds", func(int32) error { return errFlaky }, 1 + 3, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			db, err := storage.OpenSQLite(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Write.ExecContext(ctx, `CREATE TABLE writes (attempt INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			backend := bus.SQLiteBackend{DB: db, PollInterval: 10 * time.Millisecond}
			var attempts atomic.Int32
			cfg := bus.Config{Backend: backend, MaxRetries: 2, RetryInterval: time.Millisecond}
			stop := runOneMessage(t, cfg, "write", func(ctx context.Context, _ *domain.JobProjected) error {
				tx, err := storage.MustTx(ctx)
				if err != nil {
					return err
				}
				n := attempts.Add(1)
				if _, err := tx.ExecContext(ctx, `INSERT INTO writes VALUES (?)`, n); err != nil {
					return err
				}
				return tc.fail(n)
			})
			var rows int
			var poisoned int64
			for deadline := time.Now().Add(30 * time.Second); ; {
				if err := db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM writes`).Scan(&rows); err != nil {
					t.Fatal(err)
				}
				if poisoned, err = backend.PoisonPending(ctx); err != nil {
					t.Fatal(err)
				}
				if (rows == tc.wantRows && poisoned == tc.wantPoisoned && attempts.Load() >= tc.wantAttempts) || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // no further delivery
			stop()
			var last int32
			if rows == 1 {
				if err := db.Read.QueryRowContext(context.Background(), `SELECT attempt FROM writes`).Scan(&last); err != nil {
					t.Fatal(err)
				}
			}
			if rows != tc.wantRows || attempts.Load() != tc.wantAttempts || poisoned != tc.wantPoisoned {
				t.Fatalf("%d rows (written by attempt %d), %d attempts, %d poisoned; want %d rows, %d attempts, %d poisoned",
					rows, last, attempts.Load(), poisoned, tc.wantRows, tc.wantAttempts, tc.wantPoisoned)
			}
			if rows == 1 && last != tc.wantAttempts {
				t.Fatalf("the row was written by attempt %d, want the last one (%d)", last, tc.wantAttempts)
			}
		})
	}
}
