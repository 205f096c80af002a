package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
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
			n := queryPG(t, db, `SELECT COUNT(*) FROM "watermill_import_completed_v1" WHERE convert_from(payload, 'UTF8') LIKE $1`,
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
			if n := outboxCompletions(t, db, id); n != 1 {
				t.Errorf("%d ImportCompleted messages in the outbox, want exactly 1", n)
			}
			distinct, total := kafkaCompletions(t, brokers, id)
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
	checkExactlyOncePG(t, db, id, total)
	checkCompleted(t, db, id)
}

func queryPG(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// checkExactlyOncePG is checkExactlyOnce on PostgreSQL, less the count of
// completions (which depends on the bus).
func checkExactlyOncePG(t *testing.T, db *sql.DB, importID string, total int) {
	t.Helper()
	if n := queryPG(t, db, `SELECT COUNT(*) FROM results WHERE import_id = $1`, importID); n != total {
		t.Errorf("%d results, want %d", n, total)
	}
	if n := queryPG(t, db, `SELECT COUNT(DISTINCT row_num) FROM results WHERE import_id = $1 AND row_num BETWEEN 1 AND $2`, importID, total); n != total {
		t.Errorf("%d distinct result rows, want %d", n, total)
	}
	if n := queryPG(t, db, `SELECT COUNT(*) FROM (SELECT stream_id FROM number_events GROUP BY stream_id
		HAVING MIN(version) <> 1 OR MAX(version) <> COUNT(*) OR COUNT(DISTINCT version) <> COUNT(*)) g`); n != 0 {
		t.Errorf("%d streams with a gap or a repeated version", n)
	}
	if n := queryPG(t, db, `SELECT COUNT(*) FROM stream_heads h WHERE h.version <>
		(SELECT COALESCE(MAX(version), 0) FROM number_events e WHERE e.stream_id = h.stream_id)`); n != 0 {
		t.Errorf("%d stream heads ahead of or behind their projected events", n)
	}
	if n := queryPG(t, db, `SELECT COUNT(*) FROM number_events_parked`); n != 0 {
		t.Errorf("%d events still waiting for their predecessor", n)
	}
}

// completedFor reports whether an ImportCompleted payload is importID's.
func completedFor(payload []byte, importID string) bool {
	var ev struct {
		Import struct {
			ID string `json:"id"`
		} `json:"import"`
	}
	return json.Unmarshal(payload, &ev) == nil && ev.Import.ID == importID
}

// outboxCompletions counts the ImportCompleted events of importID committed
// to the outbox.
func outboxCompletions(t *testing.T, db *sql.DB, importID string) int {
	t.Helper()
	rows, err := db.Query(`SELECT payload FROM "watermill_outbox"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var env struct {
			DestinationTopic string `json:"destination_topic"`
			Payload          []byte `json:"payload"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("outbox envelope: %v", err)
		}
		if env.DestinationTopic == "import_completed_v1" && completedFor(env.Payload, importID) {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// kafkaCompletions reads the whole import_completed_v1 topic and returns how
// many distinct messages (by Watermill UUID) and records complete importID.
func kafkaCompletions(t *testing.T, brokers []string, importID string) (distinct, records int) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	const topic = "import_completed_v1"
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	uuids := map[string]bool{}
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			if completedFor(m.Value, importID) {
				records++
				for _, h := range m.Headers {
					if string(h.Key) == "_watermill_message_uuid" {
						uuids[string(h.Value)] = true
					}
				}
			}
			if m.Offset >= end-1 {
				break
			}
		}
		_ = pc.Close()
	}
	return len(uuids), records
}
