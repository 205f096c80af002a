package main

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the test reads the PostgreSQL database directly

	"github.com/phonepipe/phonepipe/internal/testenv"
)

// TestRolesInSeparateProcesses runs every role in its own process — the api
// (with the splitter), two validators, the projector, the aggregator and the
// notifier — over PostgreSQL, then over Kafka (an in-process cluster the
// children reach by TCP) with the projections in PostgreSQL. One validator
// is SIGKILLed mid-import; the import must still complete with every row
// exactly once and exactly one ImportCompleted.
func TestRolesInSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	bin := buildBinary(t)
	t.Run("postgres", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		runSplitRoles(t, bin, dsn, []string{"--backend", "postgres", "--postgres-dsn", dsn}, func(t *testing.T, db *sql.DB, id string) {
			n := testenv.PGCount(t, db, `SELECT COUNT(*) FROM "watermill_import_completed_v1" WHERE convert_from(payload, 'UTF8') LIKE $1`,
				fmt.Sprintf(`%%"id":"%s"%%`, id))
			if n != 1 {
				t.Errorf("%d ImportCompleted messages, want exactly 1", n)
			}
		})
	})
	t.Run("kafka", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		brokers := testenv.Kafka(t)
		args := []string{"--backend", "kafka", "--kafka-brokers", strings.Join(brokers, ","), "--kafka-partitions", "8", "--postgres-dsn", dsn}
		runSplitRoles(t, bin, dsn, args, func(t *testing.T, db *sql.DB, id string) {
			if n := testenv.OutboxCompletions(t, db, id); n != 1 {
				t.Errorf("%d ImportCompleted messages in the outbox, want exactly 1", n)
			}
			distinct, total := testenv.KafkaCompletions(t, brokers, id)
			if distinct != 1 {
				t.Errorf("%d distinct ImportCompleted messages in Kafka, want exactly 1", distinct)
			}
			// Forwarding is at least once: a forwarder that dies after
			// sending and before committing sends again. Consumers dedupe.
			t.Logf("ImportCompleted: 1 event, %d record(s) in Kafka", total)
		})
	})
}

// runSplitRoles starts one process per role on backend args, imports rows,
// kills a validator once rows are being processed and checks the outcome.
func runSplitRoles(t *testing.T, bin binary, dsn string, args []string, checkCompleted func(*testing.T, *sql.DB, string)) {
	start := func(roles string) *child {
		return bin.start(t, t.TempDir(), append([]string{"--roles", roles, "--job-size", "200"}, args...)...)
	}
	api := start("api,split")
	validators := []*child{start("validate"), start("validate")}
	for _, r := range []string{"project", "aggregate", "notify"} {
		start(r)
	}
	const total = 20_000
	id := upload(t, api.url, numbersCSV(total))

	deadline := time.Now().Add(3 * time.Minute)
	for {
		s := getSummary(t, api.url, id)
		if s.Processed > 0 {
			t.Logf("killing a validator at %d of %d rows (%s)", s.Processed, total, s.Status)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	validators[0].kill()

	waitUntilCompleted(t, api.url, id, total, 4*time.Minute)

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	testenv.CheckExactlyOncePG(t, db, id, total)
	checkCompleted(t, db, id)
}
