package testenv

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// PGCount runs a query returning one number on PostgreSQL (30 s at most).
func PGCount(t testing.TB, db *sql.DB, q string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// CheckExactlyOncePG checks, on a PostgreSQL database, what an import of
// total rows left once it completed: one result for each of rows 1..total,
// number streams without a gap or a repeated version, stream heads at the
// last projected version and no event waiting for its predecessor. Number
// streams are shared by imports: check once every import is done.
func CheckExactlyOncePG(t testing.TB, db *sql.DB, importID string, total int) {
	t.Helper()
	if n := PGCount(t, db, `SELECT COUNT(*) FROM results WHERE import_id = $1`, importID); n != total {
		t.Errorf("%d results, want %d", n, total)
	}
	if n := PGCount(t, db, `SELECT COUNT(DISTINCT row_num) FROM results WHERE import_id = $1 AND row_num BETWEEN 1 AND $2`, importID, total); n != total {
		t.Errorf("%d distinct result rows, want %d", n, total)
	}
	if n := PGCount(t, db, `SELECT COUNT(*) FROM (SELECT stream_id FROM number_events GROUP BY stream_id
		HAVING MIN(version) <> 1 OR MAX(version) <> COUNT(*) OR COUNT(DISTINCT version) <> COUNT(*)) g`); n != 0 {
		t.Errorf("%d streams with a gap or a repeated version", n)
	}
	if n := PGCount(t, db, `SELECT COUNT(*) FROM stream_heads h WHERE h.version <>
		(SELECT COALESCE(MAX(version), 0) FROM number_events e WHERE e.stream_id = h.stream_id)`); n != 0 {
		t.Errorf("%d stream heads ahead of or behind their projected events", n)
	}
	if n := PGCount(t, db, `SELECT COUNT(*) FROM number_events_parked`); n != 0 {
		t.Errorf("%d events still waiting for their predecessor", n)
	}
}

// CompletedFor reports whether an ImportCompleted payload is importID's.
func CompletedFor(payload []byte, importID string) bool {
	var ev struct {
		Import struct {
			ID string `json:"id"`
		} `json:"import"`
	}
	return json.Unmarshal(payload, &ev) == nil && ev.Import.ID == importID
}

// PGCompletions counts the ImportCompleted messages of importID on the
// PostgreSQL bus (backend postgres).
func PGCompletions(t testing.TB, db *sql.DB, importID string) int {
	t.Helper()
	return countPayloads(t, db, `SELECT payload FROM "watermill_import_completed_v1"`, func(raw []byte) bool {
		return CompletedFor(raw, importID)
	})
}

// OutboxCompletions counts the ImportCompleted messages of importID
// committed to the outbox (backend kafka with PostgreSQL).
func OutboxCompletions(t testing.TB, db *sql.DB, importID string) int {
	t.Helper()
	return countPayloads(t, db, `SELECT payload FROM "watermill_outbox"`, func(raw []byte) bool {
		var env struct {
			DestinationTopic string `json:"destination_topic"`
			Payload          []byte `json:"payload"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("outbox envelope: %v", err)
		}
		return env.DestinationTopic == "import_completed_v1" && CompletedFor(env.Payload, importID)
	})
}

// countPayloads counts the payloads that query returns and match accepts.
func countPayloads(t testing.TB, db *sql.DB, query string, match func([]byte) bool) int {
	t.Helper()
	rows, err := db.Query(query)
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
		if match(raw) {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// KafkaCompletions reads the whole import_completed_v1 topic and returns how
// many distinct messages (by Watermill UUID) and records complete importID.
// Forwarding is at least once, so records may exceed distinct.
func KafkaCompletions(t testing.TB, brokers []string, importID string) (distinct, records int) {
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
			if CompletedFor(m.Value, importID) {
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
