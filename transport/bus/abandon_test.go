package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// TestSerializationFailureRedeliversInANewTransaction: on PostgreSQL a
// handler runs in the subscriber's REPEATABLE READ transaction; when a
// concurrent commit makes its write fail with a serialization failure, the
// transaction is given up and the message handled again in a new one —
// not retried in the stale snapshot, not poisoned — and its effect is
// applied exactly once.
func TestSerializationFailureRedeliversInANewTransaction(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := storage.OpenPostgres(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE counter (id INT PRIMARY KEY, v INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, `INSERT INTO counter VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	backend, err := bus.NewSQLBackend(bus.SQLBackend{DB: db, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	stop := runOneMessage(t, bus.Config{Backend: backend, MaxRetries: 1}, "count", func(ctx context.Context, _ *domain.JobProjected) error {
		tx, err := storage.MustTx(ctx)
		if err != nil {
			return err
		}
		if attempts.Add(1) == 1 {
			// Another transaction changes the row after this one's
			// snapshot was taken.
			if _, err := db.Write.ExecContext(ctx, `UPDATE counter SET v = v + 100 WHERE id = 1`); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE counter SET v = v + 1 WHERE id = 1`)
		return err
	})
	deadline := time.Now().Add(30 * time.Second)
	var v int
	for {
		if err := db.Read.QueryRowContext(ctx, `SELECT v FROM counter WHERE id = 1`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v == 101 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if v != 101 || attempts.Load() != 2 {
		t.Fatalf("counter %d after %d attempts, want 101 after 2", v, attempts.Load())
	}
	var poisoned int
	if err := db.Read.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM "watermill_poison"`).Scan(&poisoned); err != nil {
		t.Fatal(err)
	}
	if poisoned != 0 {
		t.Fatalf("%d poisoned messages, want none", poisoned)
	}
}
