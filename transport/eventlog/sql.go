// Package eventlog reads phonepipe's event log — the bus topics — for
// replay (see projections.Replayer): on the SQL backends the watermill_<topic>
// tables next to the projections, on Kafka the topics themselves.
//
// Nothing here writes to the log. phonepipe never deletes from it: the SQL
// topic tables are never trimmed and Kafka topics are created with
// retention.ms=-1 (see docs/REPLAY.md).
package eventlog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"

	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"

	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// readBatch messages are read per query. Messages are large (a job's
// events), and a batch is held in memory while it is applied.
const readBatch = 32

// SQL is the event log of a SQL backend: the messages tables of the topics
// in the database of dialect.
//
// Order: on SQLite, offsets are assigned in commit order. On PostgreSQL
// messages are read in (transaction_id, offset) order and, unless
// projections.Through.Committed, only below the oldest running transaction
// (pg_snapshot_xmin), as watermill-sql's subscriber reads them, so nothing
// can appear behind a position already read. On MySQL offsets are not in
// commit order. A replay that misses a message behind its position in the
// swap reads the topic again.
type SQL struct {
	Dialect storage.Dialect
}

var _ projections.EventLog = SQL{}

// Reader implements projections.EventLog.
func (l SQL) Reader(message string) (projections.LogReader, error) {
	switch l.Dialect {
	case storage.SQLite, storage.Postgres, storage.MySQL:
	default:
		return nil, fmt.Errorf("event log: unknown dialect %q", l.Dialect)
	}
	return &sqlReader{dialect: l.Dialect, topic: bus.Topic(message)}, nil
}

// LockConsumer implements projections.EventLog: on PostgreSQL and MySQL it
// locks the consumer group's row of the topic's offsets table FOR UPDATE,
// as the group's subscriber does for every batch, so the group consumes
// nothing until tx ends. On SQLite the swap transaction already holds the
// database's write lock, which every subscriber needs.
func (l SQL) LockConsumer(ctx context.Context, tx *sql.Tx, prefix, message, group string) error {
	topic := bus.Topic(message)
	var q string
	switch l.Dialect {
	case storage.Postgres:
		q = `SELECT offset_acked FROM ` + prefix + watermillsql.DefaultPostgreSQLOffsetsAdapter{}.MessagesOffsetsTable(topic) +
			` WHERE consumer_group = $1 FOR UPDATE`
	case storage.MySQL:
		q = `SELECT offset_acked FROM ` + prefix + watermillsql.DefaultMySQLOffsetsAdapter{}.MessagesOffsetsTable(topic) +
			` WHERE consumer_group = ? FOR UPDATE`
	default:
		return nil
	}
	rows, err := tx.QueryContext(ctx, q, group)
	if err != nil {
		return fmt.Errorf("lock consumer group %s of %s: %w", group, topic, err)
	}
	return rows.Close()
}

// sqlPosition is a position in a SQL topic: the last message read.
type sqlPosition struct {
	tx     string // PostgreSQL transaction id (xid8), "" elsewhere
	offset int64
}

// sqlReader reads one SQL topic.
type sqlReader struct {
	dialect storage.Dialect
	topic   string
	at      sqlPosition // the last message read; zero: none
}

// Seek implements projections.LogReader. at is the position of a message
// (Next hands out the position of the message before it).
func (r *sqlReader) Seek(at projections.LogPosition) {
	p, _ := at.(sqlPosition)
	r.at = p
}

// Next implements projections.LogReader.
func (r *sqlReader) Next(ctx context.Context, th projections.Through, fn func(projections.LogPosition, projections.LogMessage) error) error {
	for {
		batch, err := r.read(ctx, th)
		if err != nil {
			return err
		}
		for _, m := range batch {
			before := r.at
			r.at = m.pos
			if err := fn(before, m.msg); err != nil {
				return err
			}
		}
		if len(batch) < readBatch {
			return nil
		}
	}
}

// readMessage is one row of a topic.
type readMessage struct {
	pos sqlPosition
	msg projections.LogMessage
}

// read returns the next batch after the position, rows closed.
func (r *sqlReader) read(ctx context.Context, th projections.Through) ([]readMessage, error) {
	var (
		query string
		args  []any
	)
	q, prefix := th.Q, th.Prefix
	limit := strconv.Itoa(readBatch)
	switch r.dialect {
	case storage.Postgres:
		table := prefix + watermillsql.DefaultPostgreSQLSchema{}.MessagesTable(r.topic)
		settled := ` AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())`
		if th.Committed {
			settled = ""
		}
		query = `SELECT transaction_id::text, "offset", uuid, payload, metadata FROM ` + table + `
			WHERE (transaction_id, "offset") > ($1::xid8, $2)` + settled + `
			ORDER BY transaction_id, "offset" LIMIT ` + limit
		tx := r.at.tx
		if tx == "" {
			tx = "0"
		}
		args = []any{tx, r.at.offset}
	case storage.MySQL:
		table := prefix + watermillsql.DefaultMySQLSchema{}.MessagesTable(r.topic)
		query = "SELECT '', `offset`, `uuid`, `payload`, `metadata` FROM " + table + " WHERE `offset` > ? ORDER BY `offset` LIMIT " + limit
		args = []any{r.at.offset}
	default:
		table := prefix + sqlitepubsub.MessagesTable(r.topic)
		query = `SELECT '', "offset", uuid, payload, metadata FROM ` + table + ` WHERE "offset" > ? ORDER BY "offset" LIMIT ` + limit
		args = []any{r.at.offset}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read topic %s: %w", r.topic, err)
	}
	defer rows.Close()
	var out []readMessage
	for rows.Next() {
		var (
			m        readMessage
			uuid     []byte
			metadata []byte
		)
		if err := rows.Scan(&m.pos.tx, &m.pos.offset, &uuid, &m.msg.Payload, &metadata); err != nil {
			return nil, fmt.Errorf("read topic %s: %w", r.topic, err)
		}
		m.msg.UUID = string(uuid)
		if m.msg.Name, err = messageName(metadata); err != nil {
			return nil, fmt.Errorf("read topic %s, message %s: %w", r.topic, m.msg.UUID, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read topic %s: %w", r.topic, err)
	}
	return out, nil
}

// messageName reads the versioned message name ("name", set by the bus's
// cqrs marshaler) from a message's JSON metadata.
func messageName(metadata []byte) (string, error) {
	if len(metadata) == 0 {
		return "", nil
	}
	var md map[string]string
	if err := json.Unmarshal(metadata, &md); err != nil {
		return "", fmt.Errorf("decode metadata: %w", err)
	}
	return md["name"], nil
}
