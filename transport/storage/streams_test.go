package storage_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// dialects opens a fresh database of every dialect, migrated twice (the
// migrations must be idempotent, MySQL's index emulation included).
func dialects() map[string]func(t *testing.T) *storage.DB {
	migrated := func(t *testing.T, db *storage.DB, err error) *storage.DB {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		ctx := context.Background()
		for range 2 {
			err := db.WithMigrationLock(ctx, func(ctx context.Context) error {
				if err := db.Migrate(ctx); err != nil {
					return err
				}
				return projections.Migrate(ctx, db)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return db
	}
	return map[string]func(t *testing.T) *storage.DB{
		"sqlite": func(t *testing.T) *storage.DB {
			db, err := storage.OpenSQLite(t.TempDir())
			return migrated(t, db, err)
		},
		"postgres": func(t *testing.T) *storage.DB {
			db, err := storage.OpenPostgres(context.Background(), testenv.Postgres(t))
			return migrated(t, db, err)
		},
		"mysql": func(t *testing.T) *storage.DB {
			db, err := storage.OpenMySQL(context.Background(), testenv.MySQL(t))
			return migrated(t, db, err)
		},
	}
}

func next(t *testing.T, db *storage.DB, streams ...domain.StreamID) []int64 {
	t.Helper()
	var out []int64
	err := storage.InTx(context.Background(), db.Write, func(ctx context.Context) error {
		var err error
		out, err = storage.NewStreamHeads(db).Next(ctx, streams)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStreamHeadsNext: each occurrence of a stream takes its next version,
// in order, and concurrent validators sharing streams (in any order) never
// deadlock, skip or repeat a version.
func TestStreamHeadsNext(t *testing.T) {
	for name, open := range dialects() {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			if got := next(t, db, "t/+1", "t/+2", "t/+1"); !slices.Equal(got, []int64{1, 1, 2}) {
				t.Fatalf("first versions %v", got)
			}
			if got := next(t, db, "t/+2", "t/+1"); !slices.Equal(got, []int64{2, 3}) {
				t.Fatalf("next versions %v", got)
			}

			streams := []domain.StreamID{"t/+10", "t/+11", "t/+12", "t/+13"}
			const workers, rounds = 6, 5
			var (
				mu   sync.Mutex
				seen = map[domain.StreamID][]int64{}
				wg   sync.WaitGroup
			)
			for w := range workers {
				wg.Go(func() {
					for r := range rounds {
						order := slices.Clone(streams)
						if (w+r)%2 == 1 {
							slices.Reverse(order)
						}
						got := next(t, db, order...)
						mu.Lock()
						for i, s := range order {
							seen[s] = append(seen[s], got[i])
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			for _, s := range streams {
				vs := seen[s]
				slices.Sort(vs)
				for i, v := range vs {
					if v != int64(i+1) {
						t.Fatalf("%s got versions %v", s, vs)
					}
				}
			}
		})
	}
}

// TestIsConflict recognises the drivers' conflict errors, wrapped or not,
// and nothing else.
func TestIsConflict(t *testing.T) {
	for err, want := range map[error]bool{
		nil:                             false,
		context.Canceled:                false,
		&pgconn.PgError{Code: "23505"}:  false,
		&pgconn.PgError{Code: "40001"}:  true,
		&pgconn.PgError{Code: "40P01"}:  true,
		&mysql.MySQLError{Number: 1062}: false,
		&mysql.MySQLError{Number: 1213}: true,
		&mysql.MySQLError{Number: 1205}: true,
	} {
		if got := storage.IsConflict(fmt.Errorf("handler: %w", err)); err != nil && got != want {
			t.Errorf("IsConflict(%v) = %v", err, got)
		}
	}
	if storage.IsConflict(nil) {
		t.Error("nil is not a conflict")
	}
}
