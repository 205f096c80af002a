package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// Backend is a pub/sub implementation as the bus needs it.
type Backend interface {
	// Publisher publishes inside the unit of work carried by each message's
	// context when there is one (so a handler's output commits with its
	// effects), else on its own.
	Publisher() message.Publisher
	// Subscriber returns a subscriber in consumerGroup; batch is how many
	// messages it may take at once.
	Subscriber(consumerGroup string, batch int) (message.Subscriber, error)
	// BroadcastSubscriber returns a subscriber in a consumer group of its
	// own that starts at the end of each topic: every process gets every
	// message published from then on (live fan-out), and none of history.
	BroadcastSubscriber(group string) (message.Subscriber, error)
	// InitTopics creates what the topics need before anyone publishes.
	InitTopics(ctx context.Context, topics []string) error
}

// UnitOfWorker is implemented by backends whose subscribers deliver
// messages without a database transaction (Kafka). The middleware gives
// each handler attempt one; the bus runs it inside the retry middleware, so
// every attempt starts afresh.
type UnitOfWorker interface {
	UnitOfWork() message.HandlerMiddleware
}

// Pinger is implemented by backends with a broker of their own (Kafka):
// Ping reports whether it answers, for readiness checks. The SQL backends
// live in the database, which is checked anyway.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Runner is implemented by backends with background work of their own (the
// Kafka backend's outbox forwarder). Run returns when ctx is done.
type Runner interface {
	Run(ctx context.Context) error
}

// SQLiteBackend is the embedded pub/sub: watermill-sql over the SQLite
// database that also holds the projections, so consuming a message and
// writing its effects is one transaction.
type SQLiteBackend struct {
	DB           *storage.DB
	PollInterval time.Duration
	AckDeadline  time.Duration
	Logger       watermill.LoggerAdapter
}

// Publisher implements Backend.
func (b SQLiteBackend) Publisher() message.Publisher {
	return txPublisher{newPublisher: func(db watermillsql.ContextExecutor) (message.Publisher, error) {
		return sqlitepubsub.NewPublisher(db, b.Logger)
	}, db: b.DB}
}

// Subscriber implements Backend.
func (b SQLiteBackend) Subscriber(consumerGroup string, batch int) (message.Subscriber, error) {
	sub, err := sqlitepubsub.NewSubscriber(b.DB.Write, sqlitepubsub.SubscriberConfig{
		ConsumerGroup: consumerGroup,
		PollInterval:  b.PollInterval,
		BatchSize:     batch,
		AckDeadline:   b.AckDeadline,
	}, b.Logger)
	if err != nil {
		return nil, fmt.Errorf("subscriber for %s: %w", consumerGroup, err)
	}
	return sub, nil
}

// BroadcastSubscriber implements Backend: before subscribing to a topic it
// records the group's offset as the topic's last message.
func (b SQLiteBackend) BroadcastSubscriber(group string) (message.Subscriber, error) {
	inner, err := b.Subscriber(group, DefaultBatchSize)
	if err != nil {
		return nil, err
	}
	return seekingSubscriber{Subscriber: inner, seek: func(ctx context.Context, topic string) error {
		if err := sqlitepubsub.InitializeTopic(ctx, b.DB.Write, topic); err != nil {
			return err
		}
		_, err := b.DB.Write.ExecContext(ctx, `INSERT INTO `+sqlitepubsub.OffsetsTable(topic)+
			` (consumer_group, offset_acked) VALUES (?, (SELECT COALESCE(MAX("offset"), 0) FROM `+
			sqlitepubsub.MessagesTable(topic)+`)) ON CONFLICT DO NOTHING`, group)
		if err != nil {
			return fmt.Errorf("seek %s to the end of %s: %w", group, topic, err)
		}
		return nil
	}}, nil
}

// seekingSubscriber positions its consumer group before subscribing.
type seekingSubscriber struct {
	message.Subscriber
	seek func(ctx context.Context, topic string) error
}

func (s seekingSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.seek(ctx, topic); err != nil {
		return nil, err
	}
	return s.Subscriber.Subscribe(ctx, topic)
}

// InitTopics implements Backend; it also creates DLQRequeuedTable.
func (b SQLiteBackend) InitTopics(ctx context.Context, topics []string) error {
	for _, t := range topics {
		if err := sqlitepubsub.InitializeTopic(ctx, b.DB.Write, t); err != nil {
			return fmt.Errorf("initialize topic %s: %w", t, err)
		}
	}
	return InitDLQRequeued(ctx, b.DB)
}

// Backlog reports how many messages of topic the consumer group has not
// yet acknowledged (its lag behind the head of the log).
func (b SQLiteBackend) Backlog(ctx context.Context, topic, group string) (int64, error) {
	var n int64
	err := b.DB.Read.QueryRowContext(ctx, `SELECT
		(SELECT COALESCE(MAX("offset"), 0) FROM `+sqlitepubsub.MessagesTable(topic)+`) -
		COALESCE((SELECT offset_acked FROM `+sqlitepubsub.OffsetsTable(topic)+` WHERE consumer_group = ?), 0)`, group).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("backlog of %s on %s: %w", group, topic, err)
	}
	return n, nil
}

// TopicSize reports how many messages a topic holds.
func (b SQLiteBackend) TopicSize(ctx context.Context, topic string) (int64, error) {
	var n int64
	if err := b.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+sqlitepubsub.MessagesTable(topic)).Scan(&n); err != nil {
		return 0, fmt.Errorf("size of %s: %w", topic, err)
	}
	return n, nil
}

// Inspector is implemented by backends that can report consumer lag and
// topic sizes (for metrics).
type Inspector interface {
	Backlog(ctx context.Context, topic, group string) (int64, error)
	TopicSize(ctx context.Context, topic string) (int64, error)
}

// txPublisher publishes in the transaction of the messages' context, or
// directly on the database when there is none.
type txPublisher struct {
	newPublisher func(watermillsql.ContextExecutor) (message.Publisher, error)
	db           *storage.DB
}

func (p txPublisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var exec watermillsql.ContextExecutor = p.db.Write
	if tx, ok := storage.TxFrom(msgs[0].Context()); ok {
		exec = tx
	}
	pub, err := p.newPublisher(exec)
	if err != nil {
		return fmt.Errorf("publisher for %s: %w", topic, err)
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

func (p txPublisher) Close() error { return nil }
