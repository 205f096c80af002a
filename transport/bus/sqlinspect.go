package bus

import (
	"context"
	"fmt"

	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"

	"github.com/phonepipe/phonepipe/transport/storage"
)

var _ Inspector = SQLBackend{}

// Backlog implements Inspector: the messages of topic after the position of
// group (every message when the group has none yet).
func (b SQLBackend) Backlog(ctx context.Context, topic, group string) (int64, error) {
	var q string
	if b.DB.Dialect == storage.MySQL {
		q = "SELECT COUNT(*) FROM " + watermillsql.DefaultMySQLSchema{}.MessagesTable(topic) +
			" WHERE `offset` > COALESCE((SELECT offset_acked FROM " +
			watermillsql.DefaultMySQLOffsetsAdapter{}.MessagesOffsetsTable(topic) + " WHERE consumer_group = ?), 0)"
	} else {
		// Messages are read in (transaction_id, offset) order.
		q = `SELECT COUNT(*) FROM ` + watermillsql.DefaultPostgreSQLSchema{}.MessagesTable(topic) + ` m
			LEFT JOIN ` + watermillsql.DefaultPostgreSQLOffsetsAdapter{}.MessagesOffsetsTable(topic) + ` o ON o.consumer_group = $1
			WHERE o.consumer_group IS NULL OR (m.transaction_id, m."offset") > (o.last_processed_transaction_id, o.offset_acked)`
	}
	var n int64
	if err := b.DB.Read.QueryRowContext(ctx, q, group).Scan(&n); err != nil {
		return 0, fmt.Errorf("backlog of %s on %s: %w", group, topic, err)
	}
	return n, nil
}

// TopicSize implements Inspector.
func (b SQLBackend) TopicSize(ctx context.Context, topic string) (int64, error) {
	table := watermillsql.DefaultPostgreSQLSchema{}.MessagesTable(topic)
	if b.DB.Dialect == storage.MySQL {
		table = watermillsql.DefaultMySQLSchema{}.MessagesTable(topic)
	}
	var n int64
	if err := b.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("size of %s: %w", topic, err)
	}
	return n, nil
}
