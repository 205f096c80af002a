package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// SQLBackend is pub/sub over a PostgreSQL or MySQL server with
// watermill-sql's default schema and offsets adapters, in the database that
// also holds the projections: a handler writes its effects and publishes
// what they cause in the transaction that consumes its message
// (TxFromContext), so both commit with the acknowledgement or not at all.
//
// A consumer group is consumed by one transaction at a time (the adapters
// lock the group's offsets row with FOR UPDATE), whatever the number of
// processes in it: that is what makes delivery exactly-once and ordered.
// More processes of a role share its work and take over when one dies;
// they do not run its handlers in parallel (see docs/BACKENDS.md).
type SQLBackend struct {
	DB *storage.DB
	// PollInterval is how long an idle subscriber waits before it looks
	// for new messages again. Default 50ms.
	PollInterval time.Duration
	// AckDeadline bounds how long a delivered message may stay
	// unacknowledged before its batch is given up and read again.
	// Default 30s (watermill-sql's): the delivering transaction holds the
	// group's lock and, on PostgreSQL, holds back every subscriber's view
	// of newer messages while it is open.
	AckDeadline time.Duration
	// ResendInterval is the pause before a nacked message is delivered
	// again. Default 50ms.
	ResendInterval time.Duration
	Logger         watermill.LoggerAdapter
}

func (b *SQLBackend) setDefaults() {
	if b.PollInterval == 0 {
		b.PollInterval = 50 * time.Millisecond
	}
	if b.AckDeadline == 0 {
		b.AckDeadline = 30 * time.Second
	}
	if b.ResendInterval == 0 {
		b.ResendInterval = 50 * time.Millisecond
	}
	if b.Logger == nil {
		b.Logger = watermill.NopLogger{}
	}
}

// Validate checks the configuration.
func (b SQLBackend) Validate() error {
	if b.DB == nil {
		return errors.New("sql backend: missing database")
	}
	if b.DB.Dialect != storage.Postgres && b.DB.Dialect != storage.MySQL {
		return fmt.Errorf("sql backend: dialect %q is not postgres or mysql", b.DB.Dialect)
	}
	if b.PollInterval < 0 || b.AckDeadline < 0 || b.ResendInterval < 0 {
		return errors.New("sql backend: negative interval")
	}
	return nil
}

// NewSQLBackend returns a configured SQLBackend.
func NewSQLBackend(b SQLBackend) (SQLBackend, error) {
	b.setDefaults()
	if err := b.Validate(); err != nil {
		return SQLBackend{}, err
	}
	return b, nil
}

// SchemaAdapter is the messages-table adapter of the dialect. Payloads are
// stored as bytes (BYTEA, LONGBLOB), not JSON: the bus does not presume what
// a payload is.
func (b SQLBackend) SchemaAdapter(batch int) watermillsql.SchemaAdapter {
	if b.DB.Dialect == storage.MySQL {
		return watermillsql.DefaultMySQLSchema{
			GeneratePayloadType: func(string) string { return "LONGBLOB" },
			SubscribeBatchSize:  batch,
		}
	}
	return watermillsql.DefaultPostgreSQLSchema{
		GeneratePayloadType: func(string) string { return "BYTEA" },
		SubscribeBatchSize:  batch,
	}
}

// OffsetsAdapter is the offsets-table adapter of the dialect.
func (b SQLBackend) OffsetsAdapter() watermillsql.OffsetsAdapter {
	if b.DB.Dialect == storage.MySQL {
		return watermillsql.DefaultMySQLOffsetsAdapter{}
	}
	return watermillsql.DefaultPostgreSQLOffsetsAdapter{}
}

// Publisher implements Backend.
func (b SQLBackend) Publisher() message.Publisher {
	return txPublisher{newPublisher: func(db watermillsql.ContextExecutor) (message.Publisher, error) {
		return watermillsql.NewPublisher(db, watermillsql.PublisherConfig{SchemaAdapter: b.SchemaAdapter(0)}, b.Logger)
	}, db: b.DB}
}

// Subscriber implements Backend.
func (b SQLBackend) Subscriber(consumerGroup string, batch int) (message.Subscriber, error) {
	ackDeadline := b.AckDeadline
	sub, err := watermillsql.NewSubscriber(b.DB.Write, watermillsql.SubscriberConfig{
		ConsumerGroup:  consumerGroup,
		AckDeadline:    &ackDeadline,
		PollInterval:   b.PollInterval,
		ResendInterval: b.ResendInterval,
		RetryInterval:  b.PollInterval,
		BackoffManager: sqlBackoff{poll: b.PollInterval, retry: time.Second},
		SchemaAdapter:  b.SchemaAdapter(batch),
		OffsetsAdapter: b.OffsetsAdapter(),
		// Tables are created by sqlSubscriber, under a lock.
		InitializeSchema: false,
	}, b.Logger)
	if err != nil {
		return nil, fmt.Errorf("subscriber for %s: %w", consumerGroup, err)
	}
	return &sqlSubscriber{inner: sub, init: b.InitTopics, closing: make(chan struct{})}, nil
}

// sqlSubscriber wraps watermill-sql's subscriber: it creates a topic's
// tables (under the migration lock) before subscribing to it, and its Close
// returns only once every output channel is closed — watermill-sql's own
// Close may return just before it closes them.
type sqlSubscriber struct {
	inner     message.Subscriber
	init      func(ctx context.Context, topics []string) error
	closing   chan struct{}
	closeOnce sync.Once
	running   sync.WaitGroup
}

// Subscribe implements message.Subscriber.
func (s *sqlSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.init(ctx, []string{topic}); err != nil {
		return nil, err
	}
	in, err := s.inner.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		defer close(out)
		for msg := range in {
			select {
			case out <- msg:
			case <-s.closing:
				// Undelivered, so never acknowledged: the subscriber
				// gives it up as it closes.
				return
			}
		}
	}()
	return out, nil
}

// SubscribeInitialize implements message.SubscribeInitializer.
func (s *sqlSubscriber) SubscribeInitialize(topic string) error {
	return s.init(context.Background(), []string{topic})
}

// Close implements message.Subscriber.
func (s *sqlSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	err := s.inner.Close()
	s.running.Wait()
	return err
}

// BroadcastSubscriber implements Backend: before subscribing to a topic it
// records the group's offset as the topic's last message.
func (b SQLBackend) BroadcastSubscriber(group string) (message.Subscriber, error) {
	inner, err := b.Subscriber(group, DefaultBatchSize)
	if err != nil {
		return nil, err
	}
	return seekingSubscriber{Subscriber: inner, seek: func(ctx context.Context, topic string) error {
		if err := b.InitTopics(ctx, []string{topic}); err != nil {
			return err
		}
		if _, err := b.DB.Write.ExecContext(ctx, b.seekToEnd(topic), group); err != nil {
			return fmt.Errorf("seek %s to the end of %s: %w", group, topic, err)
		}
		return nil
	}}, nil
}

// seekToEnd is the statement giving a new consumer group (the only
// argument) the position of the last message of topic.
func (b SQLBackend) seekToEnd(topic string) string {
	if b.DB.Dialect == storage.MySQL {
		return `INSERT IGNORE INTO ` + watermillsql.DefaultMySQLOffsetsAdapter{}.MessagesOffsetsTable(topic) +
			` (consumer_group, offset_acked, offset_consumed) SELECT ?, COALESCE(MAX(` + "`offset`" + `), 0), COALESCE(MAX(` +
			"`offset`" + `), 0) FROM ` + watermillsql.DefaultMySQLSchema{}.MessagesTable(topic)
	}
	// Messages are read in (transaction_id, offset) order: the position is
	// the greatest of those pairs.
	return `INSERT INTO ` + watermillsql.DefaultPostgreSQLOffsetsAdapter{}.MessagesOffsetsTable(topic) +
		` (consumer_group, offset_acked, last_processed_transaction_id)
		SELECT $1, COALESCE(m."offset", 0), COALESCE(m.transaction_id, '0') FROM (SELECT 1) one LEFT JOIN (
			SELECT "offset", transaction_id FROM ` + watermillsql.DefaultPostgreSQLSchema{}.MessagesTable(topic) + `
			ORDER BY transaction_id DESC, "offset" DESC LIMIT 1) m ON true
		ON CONFLICT DO NOTHING`
}

// InitTopics implements Backend: it creates the messages and offsets tables
// of every topic, holding the database's migration lock (PostgreSQL's
// CREATE TABLE IF NOT EXISTS fails when a twin runs at the same time).
func (b SQLBackend) InitTopics(ctx context.Context, topics []string) error {
	return b.DB.WithMigrationLock(ctx, func(ctx context.Context) error {
		for _, t := range topics {
			queries := append(b.SchemaAdapter(0).SchemaInitializingQueries(t), b.OffsetsAdapter().SchemaInitializingQueries(t)...)
			for _, q := range queries {
				if _, err := b.DB.Write.ExecContext(ctx, q.Query, q.Args...); err != nil {
					return fmt.Errorf("initialize topic %s: %w", t, err)
				}
			}
		}
		return nil
	})
}

// sqlBackoff decides how long a SQL subscriber waits before its next query.
// Unlike watermill-sql's default it knows the errors that are part of
// normal operation: a lost race for a consumer group's offsets row (another
// process of the role holds it), and a transaction given up by the Abandon
// middleware so that its batch is read again in a new one. Those are
// retried at once — a subscriber that waited after losing the race would
// leave every batch to the winner — and logged at debug level.
type sqlBackoff struct {
	poll, retry time.Duration
}

// HandleError implements watermillsql.BackoffManager.
func (s sqlBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	switch {
	case err == nil && noMsg:
		return s.poll
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		return s.poll
	case storage.IsConflict(err) || errors.Is(err, sql.ErrTxDone) ||
		strings.Contains(strings.ToLower(err.Error()), "deadlock") ||
		strings.Contains(err.Error(), "concurrent update"):
		logger.Debug("Consumer group busy or batch given up, querying again", watermill.LogFields{"err": err.Error()})
		return 0
	default:
		logger.Error("Error querying for message", err, watermill.LogFields{"wait_time": s.retry})
		return s.retry
	}
}
