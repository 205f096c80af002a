package sqlitepubsub

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// defaultBatchSize is the number of messages a subscriber reads per
// transaction when no batch size is configured.
const defaultBatchSize = 100

// maxVariables is SQLite's default SQLITE_MAX_VARIABLE_NUMBER (since 3.32),
// the most parameters one statement may bind.
const maxVariables = 32766

// insertColumns is the number of bound parameters per inserted message.
const insertColumns = 3

// maxPublishBatch is the largest number of messages one Publish call can
// insert: the insert is a single statement, bounded by SQLite's limit on
// bound parameters.
const maxPublishBatch = maxVariables / insertColumns

// SchemaAdapter implements watermillsql.SchemaAdapter for SQLite.
//
// It stores each topic in its own table (see MessagesTable) whose INTEGER
// PRIMARY KEY AUTOINCREMENT column is the message offset: assigned at insert
// time, strictly increasing in commit order, never reused.
type SchemaAdapter struct {
	// SubscribeBatchSize is the number of messages a subscriber reads and
	// delivers in one transaction (holding the write lock meanwhile).
	// Larger batches mean fewer transactions but longer lock hold times and
	// more redeliveries after a crash. 0 means 100.
	SubscribeBatchSize int
}

var _ watermillsql.SchemaAdapter = SchemaAdapter{}

// MessagesTable returns the quoted name of the table holding the messages of
// topic: "watermill_<topic>".
func MessagesTable(topic string) string {
	return quoteIdent("watermill_" + topic)
}

// OffsetsTable returns the quoted name of the table holding the consumer
// group offsets of topic: "watermill_offsets_<topic>".
func OffsetsTable(topic string) string {
	return quoteIdent("watermill_offsets_" + topic)
}

// quoteIdent quotes an SQL identifier, doubling embedded quotes. Topic names
// accepted by watermill-sql only contain [A-Za-z0-9-$:._], but '.', '-', ':'
// and '$' still need quoting.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// SchemaInitializingQueries returns the CREATE TABLE IF NOT EXISTS statement
// of the topic's messages table.
func (s SchemaAdapter) SchemaInitializingQueries(topic string) []watermillsql.Query {
	return []watermillsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + MessagesTable(topic) + ` (
	"offset" INTEGER PRIMARY KEY AUTOINCREMENT,
	uuid TEXT NOT NULL,
	created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	payload BLOB,
	metadata TEXT
)`}}
}

// InsertQuery returns one INSERT statement adding msgs, in order, to the
// topic's table. At most 10922 messages (SQLite's limit of 32766 bound
// parameters, three per message) fit in one statement.
// An empty msgs yields a statement that does nothing.
func (s SchemaAdapter) InsertQuery(topic string, msgs message.Messages) (watermillsql.Query, error) {
	if len(msgs) == 0 {
		// watermillsql.Publisher executes whatever we return; publishing
		// nothing must succeed and insert nothing.
		return watermillsql.Query{Query: `SELECT 1 WHERE 0`}, nil
	}
	if len(msgs) > maxPublishBatch {
		return watermillsql.Query{}, fmt.Errorf("cannot publish %d messages in one call to topic %s: at most %d fit in one SQLite statement", len(msgs), topic, maxPublishBatch)
	}

	args := make([]any, 0, len(msgs)*insertColumns)
	for _, msg := range msgs {
		metadata, err := json.Marshal(msg.Metadata)
		if err != nil {
			return watermillsql.Query{}, fmt.Errorf("marshal metadata of message %s: %w", msg.UUID, err)
		}
		// Metadata is bound as a string so that SQLite stores TEXT
		// (json_extract works on it); a []byte would be stored as a BLOB,
		// which SQLite's JSON functions read as JSONB.
		args = append(args, msg.UUID, []byte(msg.Payload), string(metadata))
	}

	query := `INSERT INTO ` + MessagesTable(topic) + ` (uuid, payload, metadata) VALUES ` +
		strings.TrimSuffix(strings.Repeat(`(?,?,?),`, len(msgs)), ",")
	return watermillsql.Query{Query: query, Args: args}, nil
}

func (s SchemaAdapter) batchSize() int {
	if s.SubscribeBatchSize <= 0 {
		return defaultBatchSize
	}
	return s.SubscribeBatchSize
}

// SelectQuery returns the query selecting the next batch of messages of topic
// after the offset acknowledged by consumerGroup, in offset order.
func (s SchemaAdapter) SelectQuery(topic string, consumerGroup string, offsetsAdapter watermillsql.OffsetsAdapter) watermillsql.Query {
	next := offsetsAdapter.NextOffsetQuery(topic, consumerGroup)
	query := `SELECT "offset", uuid, payload, metadata FROM ` + MessagesTable(topic) +
		` WHERE "offset" > (` + next.Query + `) ORDER BY "offset" ASC LIMIT ` + strconv.Itoa(s.batchSize())
	return watermillsql.Query{Query: query, Args: next.Args}
}

// UnmarshalMessage scans a row returned by SelectQuery into a message.
func (s SchemaAdapter) UnmarshalMessage(row watermillsql.Scanner) (watermillsql.Row, error) {
	var r watermillsql.Row
	if err := row.Scan(&r.Offset, &r.UUID, &r.Payload, &r.Metadata); err != nil {
		return watermillsql.Row{}, fmt.Errorf("scan message row: %w", err)
	}

	msg := message.NewMessage(string(r.UUID), r.Payload)
	if len(r.Metadata) > 0 {
		if err := json.Unmarshal(r.Metadata, &msg.Metadata); err != nil {
			return watermillsql.Row{}, fmt.Errorf("unmarshal metadata of message %s (offset %d): %w", msg.UUID, r.Offset, err)
		}
	}
	r.Msg = msg
	return r, nil
}

// SubscribeIsolationLevel returns sql.LevelDefault. SQLite transactions are
// always serializable; modernc.org/sqlite ignores the requested level (other
// SQLite drivers reject anything but the default), and what makes the
// subscriber safe is BEGIN IMMEDIATE, configured on the pool by OpenDB.
func (s SchemaAdapter) SubscribeIsolationLevel() sql.IsolationLevel {
	return sql.LevelDefault
}
