package sqlitepubsub

import (
	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
)

// OffsetsAdapter implements watermillsql.OffsetsAdapter for SQLite.
//
// SQLite has no SELECT ... FOR UPDATE. Exactly-once delivery within a
// consumer group instead relies on the subscriber's transaction holding the
// database's single write lock from its first statement (BEGIN IMMEDIATE,
// see OpenDB): reading the acknowledged offset, delivering the batch and
// writing the new offset happen while no other connection can write, so two
// subscribers of one group can never read the same offset. See the package
// documentation for the full argument.
type OffsetsAdapter struct{}

var _ watermillsql.OffsetsAdapter = OffsetsAdapter{}

// SchemaInitializingQueries returns the CREATE TABLE IF NOT EXISTS statement
// of the topic's offsets table.
func (a OffsetsAdapter) SchemaInitializingQueries(topic string) []watermillsql.Query {
	return []watermillsql.Query{{Query: `CREATE TABLE IF NOT EXISTS ` + OffsetsTable(topic) + ` (
	consumer_group TEXT NOT NULL PRIMARY KEY,
	offset_acked INTEGER NOT NULL DEFAULT 0
)`}}
}

// AckMessageQuery returns the upsert storing row's offset as the last one
// consumerGroup acknowledged.
func (a OffsetsAdapter) AckMessageQuery(topic string, row watermillsql.Row, consumerGroup string) watermillsql.Query {
	return watermillsql.Query{
		Query: `INSERT INTO ` + OffsetsTable(topic) + ` (consumer_group, offset_acked) VALUES (?, ?)
ON CONFLICT (consumer_group) DO UPDATE SET offset_acked = excluded.offset_acked`,
		Args: []any{consumerGroup, row.Offset},
	}
}

// ConsumedMessageQuery returns no query: with every transaction holding
// the write lock from BEGIN on (which NewSubscriber enforces by accepting
// only pools opened by OpenDB), there is no race to detect between reading
// the offset and delivering a message.
func (a OffsetsAdapter) ConsumedMessageQuery(topic string, row watermillsql.Row, consumerGroup string, consumerULID []byte) watermillsql.Query {
	return watermillsql.Query{}
}

// NextOffsetQuery returns the query of the last offset consumerGroup
// acknowledged, 0 if it never acknowledged one. The subscriber reads the
// messages after it.
func (a OffsetsAdapter) NextOffsetQuery(topic, consumerGroup string) watermillsql.Query {
	return watermillsql.Query{
		Query: `SELECT COALESCE((SELECT offset_acked FROM ` + OffsetsTable(topic) + ` WHERE consumer_group = ?), 0)`,
		Args:  []any{consumerGroup},
	}
}

// BeforeSubscribingQueries returns nothing: a consumer group needs no row
// before it acknowledges its first message.
func (a OffsetsAdapter) BeforeSubscribingQueries(topic string, consumerGroup string) []watermillsql.Query {
	return nil
}
