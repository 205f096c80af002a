package handlers_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
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

// BenchmarkStorageFloor measures, per number and on one goroutine, the
// least any event-sourced pipeline on the embedded database (and, for one
// figure, on PostgreSQL) does besides enriching the number, next to the
// enrichment itself (the bare loop's
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
//   - stream-index: what a log-structured store would keep per number
//     instead (stream, version and the event's place in the log, a narrow
//     row in a WITHOUT ROWID table), a job's 500 to a transaction, and a
//     hundred jobs' merged in one.
//
// Every transaction puts its keys in sorted order, in statements of 500
// rows.
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
			benchmarkKeyedInserts(b, floorDB(b), storage.SQLite, eventStreams(m), perTx)
		})
	}
	b.Run("stream-event-postgres/per-tx=500", func(b *testing.B) {
		db, err := sql.Open("pgx", testenv.Postgres(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		benchmarkKeyedInserts(b, db, storage.Postgres, eventStreams(m), benchJobRows)
	})
	for _, perTx := range []int{benchJobRows, 100 * benchJobRows} {
		b.Run(fmt.Sprintf("stream-index/per-tx=%d", perTx), func(b *testing.B) {
			benchmarkKeyedInserts(b, floorDB(b), storage.SQLite, streamIndex(), perTx)
		})
	}
}

// keyedTable is a table whose rows go in under a random key.
type keyedTable struct {
	create  string
	columns string // of the INSERT
	width   int
	row     func(key string, i int) []any
}

// eventStreams is number_events' shape: each number's events in full,
// keyed by stream and version.
func eventStreams(m *domain.NumbersRecorded) keyedTable {
	return keyedTable{
		create: `CREATE TABLE streams (stream_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
			PRIMARY KEY (stream_id, version))`,
		columns: `streams (stream_id, version, data)`,
		width:   3,
		row: func(key string, i int) []any {
			return []any{key, 1, string(m.Events[i%len(m.Events)].Data)}
		},
	}
}

// streamIndex is what a log-structured store would keep per number: where
// in an append-only log each version of its stream is.
func streamIndex() keyedTable {
	return keyedTable{
		create: `CREATE TABLE stream_index (stream_id TEXT NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL,
			PRIMARY KEY (stream_id, version)) WITHOUT ROWID`,
		columns: `stream_index (stream_id, version, seq)`,
		width:   3,
		row:     func(key string, i int) []any { return []any{key, 1, i} },
	}
}

// benchmarkKeyedInserts puts rows of t under fresh random keys, perTx to a
// transaction in sorted key order (as a merge of a batch would), after
// floorStreams rows were put in the same way.
func benchmarkKeyedInserts(b *testing.B, db *sql.DB, d storage.Dialect, t keyedTable, perTx int) {
	if _, err := db.Exec(t.create); err != nil {
		b.Fatal(err)
	}
	perStmt := min(perTx, benchJobRows)
	insert := d.Rebind(`INSERT INTO ` + t.columns + ` VALUES ` + storage.Values(perStmt, t.width))
	random := rand.New(rand.NewPCG(1, 2))
	keys := make([]string, perTx)
	args := make([]any, 0, t.width*perTx)
	fill := func() {
		for i := range keys {
			keys[i] = fmt.Sprintf("n:t:+%015d", random.Int64N(1e15))
		}
		slices.Sort(keys)
		args = args[:0]
		for i, k := range keys {
			args = append(args, t.row(k, i)...)
		}
	}
	put := func() {
		stmts := make([][]any, 0, perTx/perStmt)
		for start := 0; start < len(args); start += perStmt * t.width {
			stmts = append(stmts, args[start:start+perStmt*t.width])
		}
		floorTx(b, db, insert, stmts...)
	}
	for range max(floorStreams/perTx, 1) {
		fill()
		put()
	}
	for b.Loop() {
		b.StopTimer()
		fill()
		b.StartTimer()
		put()
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

// floorTx runs insert once per argument list, in one write transaction.
func floorTx(b *testing.B, db *sql.DB, insert string, argLists ...[]any) {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, args := range argLists {
		if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// reportPerNumber reports the time per number of operations of perOp
// numbers each.
func reportPerNumber(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perOp), "ns/number")
}
