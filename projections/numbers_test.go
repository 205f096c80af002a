package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// dialects opens a fresh, migrated database of every dialect.
func dialects() map[string]func(t *testing.T) *storage.DB {
	migrated := func(t *testing.T, db *storage.DB, err error) *storage.DB {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		ctx := context.Background()
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := projections.Migrate(ctx, db); err != nil {
			t.Fatal(err)
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

const number = "+36301234567"

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// recorded is a NumbersRecorded message of one import carrying the given
// versions of the number's stream, one row each.
func recorded(t *testing.T, importID string, versions ...int64) domain.NumbersRecorded {
	t.Helper()
	m := domain.NumbersRecorded{ImportID: importID, Tenant: domain.DefaultTenant, Job: 1}
	for i, v := range versions {
		data, err := json.Marshal(domain.NumberValidated{Row: i + 1, Input: number,
			Result: phone.Result{Valid: true, E164: number}})
		if err != nil {
			t.Fatal(err)
		}
		m.Events = append(m.Events, domain.NumberEvent{
			ID: fmt.Sprintf("ev-%d", v), Stream: domain.NumberStream(domain.DefaultTenant, number), Version: v,
			Type: domain.EventNumberValidated, OccurredAt: epoch.Add(time.Duration(v) * time.Second),
			ImportID: importID, Data: data,
		})
	}
	return m
}

// TestNumbersApplyEventsInVersionOrder delivers a number's events out of
// order — later versions first, two of them in one message in reverse —
// and checks that the projection waits for the missing versions instead of
// skipping them, then catches up to the newest once they arrive.
func TestNumbersApplyEventsInVersionOrder(t *testing.T) {
	for name, open := range dialects() {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			n := projections.NewNumbers(db)
			ctx := context.Background()
			project := func(m domain.NumbersRecorded) domain.Counts {
				t.Helper()
				var c domain.Counts
				err := storage.InTx(ctx, db.Write, func(ctx context.Context) error {
					var err error
					c, err = n.Project(ctx, m)
					return err
				})
				if err != nil {
					t.Fatalf("project %s: %v", m.ImportID, err)
				}
				return c
			}
			if c := project(recorded(t, "imp-c", 4, 3)); c.Processed != 2 || c.Duplicates != 1 {
				t.Fatalf("counts %+v, want 2 rows, 1 repeat", c)
			}
			project(recorded(t, "imp-b", 2))
			if _, err := n.Number(ctx, domain.DefaultTenant, number); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("number visible before its first version: %v", err)
			}
			if _, err := n.Events(ctx, domain.DefaultTenant, number); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("events visible before the first version: %v", err)
			}
			project(recorded(t, "imp-a", 1))
			got, err := n.Number(ctx, domain.DefaultTenant, number)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != 4 || !got.FirstSeen.Equal(epoch.Add(time.Second)) || !got.LastSeen.Equal(epoch.Add(4*time.Second)) {
				t.Fatalf("number %+v, want version 4 seen from v1 to v4", got)
			}
			if fmt.Sprint(got.Imports) != "[imp-a imp-b imp-c]" {
				t.Fatalf("imports %v", got.Imports)
			}
			evs, err := n.Events(ctx, domain.DefaultTenant, number)
			if err != nil {
				t.Fatal(err)
			}
			for i, ev := range evs {
				if ev.Version != int64(i+1) {
					t.Fatalf("event %d has version %d", i, ev.Version)
				}
			}
			if len(evs) != 4 {
				t.Fatalf("%d events, want 4", len(evs))
			}
			// A redelivered old event changes nothing.
			project(recorded(t, "imp-b2", 2))
			if again, _ := n.Number(ctx, domain.DefaultTenant, number); again.Version != 4 {
				t.Fatalf("version %d after a stale event, want 4", again.Version)
			}
		})
	}
}
