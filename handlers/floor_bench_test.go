package handlers_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// floorStreams is how many numbers the stream table holds before the
// timed inserts: the size of the 200,000-row list.
const floorStreams = 200_000

// BenchmarkStorageFloor measures, per number and on one core, the least
// any event-sourced pipeline on the embedded database does besides
// enriching the number, next to the enrichment itself (the bare loop's
// work per number). With both cores busy, a pipeline that adds W to the
// library's E per number runs at E / (E + W) of the bare loop at best, so
// the target of 0.8× leaves W ≤ E / 4 for everything: upload, events,
// bus, projections and aggregation.
//
//   - enrich: phone.Enrich of one row of a realistic list.
//   - bus-codec: one event encoded into a job's message and decoded from
//     it once (the bus's marshaler, 500 events to a message).
//   - append-event: one event's row (its 470-odd bytes of data) appended to
//     a log under a sequential key, 500 to a transaction, as the service's
//     pool runs it (commit included).
//   - stream-event: the same row put into a per-number stream, keyed by
//     stream and version like number_events, in a table that already holds
//     200,000 streams: one insert under a random key; a job's 500 to a
//     transaction, and ten jobs' to one.
//   - stream-event-postgres: the same on PostgreSQL (skipped without
//     $PHONEPIPE_TEST_POSTGRES_DSN), one client: the time per number is
//     the client's and the server's work and the round trips.
//
// The database is opened as the service opens it, except that SQLite's own
// checkpoints run in the committing writer, so that their cost is counted.
func BenchmarkStorageFloor(b *testing.B) {
	m := recordedJob(b)
	rows := listRows(b, benchJobRows)
	phone.Warm()

	b.Run("enrich", func(b *testing.B) {
		for b.Loop() {
			for _, r := range rows {
				phone.Enrich(r.Input, r.Region)
			}
		}
		reportPerNumber(b, len(rows))
	})
	b.Run("bus-codec", func(b *testing.B) {
		marshaler := bus.NewMarshaler()
		for b.Loop() {
			msg, err := marshaler.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			var out domain.NumbersRecorded
			if err := marshaler.Unmarshal(msg, &out); err != nil {
				b.Fatal(err)
			}
		}
		reportPerNumber(b, len(m.Events))
	})
	b.Run("append-event", func(b *testing.B) {
		db := floorDB(b)
		if _, err := db.Exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, data TEXT NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		insert := `INSERT INTO events (data) VALUES ` + storage.Values(len(m.Events), 1)
		args := make([]any, 0, len(m.Events))
		for _, ev := range m.Events {
			args = append(args, string(ev.Data))
		}
		for b.Loop() {
			floorTx(b, db, insert, args)
		}
		reportPerNumber(b, len(m.Events))
	})
	for _, perTx := range []int{benchJobRows, 10 * benchJobRows} {
		b.Run(fmt.Sprintf("stream-event/per-tx=%d", perTx), func(b *testing.B) {
			benchmarkStreamInserts(b, floorDB(b), storage.SQLite, m, perTx)
		})
	}
	b.Run("stream-event-postgres/per-tx=500", func(b *testing.B) {
		db, err := sql.Open("pgx", testenv.Postgres(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		benchmarkStreamInserts(b, db, storage.Postgres, m, benchJobRows)
	})
}

// benchmarkStreamInserts puts the events of m into per-number streams,
// perTx to a transaction (the events repeated, under fresh random keys).
func benchmarkStreamInserts(b *testing.B, db *sql.DB, d storage.Dialect, m *domain.NumbersRecorded, perTx int) {
	if _, err := db.Exec(`CREATE TABLE streams (stream_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
		PRIMARY KEY (stream_id, version))`); err != nil {
		b.Fatal(err)
	}
	insert := d.Rebind(`INSERT INTO streams (stream_id, version, data) VALUES ` + storage.Values(perTx, 3))
	keys := rand.New(rand.NewPCG(1, 2))
	args := make([]any, 0, 3*perTx)
	fill := func() {
		args = args[:0]
		for i := range perTx {
			ev := m.Events[i%len(m.Events)]
			args = append(args, fmt.Sprintf("n:t:+%015d", keys.Int64N(1e15)), 1, string(ev.Data))
		}
	}
	for range floorStreams / perTx {
		fill()
		floorTx(b, db, insert, args)
	}
	for b.Loop() {
		b.StopTimer()
		fill()
		b.StartTimer()
		floorTx(b, db, insert, args)
	}
	reportPerNumber(b, perTx)
}

// floorDB opens a database file as the service does.
func floorDB(b *testing.B) *sql.DB {
	b.Helper()
	db, err := sqlitepubsub.OpenDB(filepath.Join(b.TempDir(), "floor.db")) // checkpoints run in the committing writer: counted
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// floorTx runs one multi-row insert in its own write transaction.
func floorTx(b *testing.B, db *sql.DB, insert string, args []any) {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func reportPerNumber(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perOp), "ns/number")
}
