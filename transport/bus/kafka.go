package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/transport/kafkapubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// OutboxTopic is the SQL topic in which handlers publish, inside their
// transaction, the messages the forwarder moves to Kafka.
const OutboxTopic = "outbox"

// forwarderGroup is the consumer group of the outbox: one forwarder works at
// a time, whatever the number of processes.
const forwarderGroup = "forwarder"

// outboxBatch messages are forwarded per outbox transaction.
const outboxBatch = 100

// KafkaConfig configures a KafkaBackend.
type KafkaConfig struct {
	Kafka kafkapubsub.Config
	// DB holds the projections and the handlers' state; each handler
	// attempt runs in a transaction on it (UnitOfWork).
	DB *storage.DB
	// Outbox is the SQL backend of DB (SQLiteBackend or SQLBackend): the
	// outbox topic lives there.
	Outbox Backend
	Logger watermill.LoggerAdapter
}

func (c *KafkaConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
	if c.Kafka.PartitionKey == nil {
		// The key the bus stamps on each message (see PartitionKey).
		c.Kafka.PartitionKey = func(_ string, msg *message.Message) string {
			if k := msg.Metadata.Get(PartitionKeyMetadata); k != "" {
				return k
			}
			return msg.UUID
		}
	}
}

// Validate checks the configuration.
func (c KafkaConfig) Validate() error {
	if c.DB == nil || c.Outbox == nil {
		return errors.New("kafka backend: missing database or outbox")
	}
	return nil
}

// KafkaBackend is pub/sub over Kafka, with the projections and the
// handlers' state in a SQL database. The message does not bring a
// transaction, so:
//
//   - every handler attempt gets one (UnitOfWork), committed only when the
//     handler succeeds, after which the message is acknowledged;
//   - messages published inside a transaction go to the SQL outbox topic,
//     in that transaction (Watermill's forwarder envelope), and a forwarder
//     run by every process (one at a time) moves them to Kafka: a state
//     change and what it causes are committed together;
//   - messages published outside a transaction (poison queue) go to Kafka
//     directly.
//
// Delivery is at least once; handlers are idempotent (storage.Handled).
type KafkaBackend struct {
	cfg     KafkaConfig
	pubsub  *kafkapubsub.PubSub
	direct  message.Publisher
	inspect *kafkapubsub.Inspector
}

// NewKafkaBackend connects the producer and an inspector (lag and topic
// sizes for metrics); Close releases them.
func NewKafkaBackend(cfg KafkaConfig) (*KafkaBackend, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ps, err := kafkapubsub.New(cfg.Kafka, cfg.Logger)
	if err != nil {
		return nil, err
	}
	direct, err := ps.NewPublisher()
	if err != nil {
		return nil, err
	}
	inspect, err := ps.NewInspector()
	if err != nil {
		return nil, errors.Join(err, direct.Close())
	}
	return &KafkaBackend{cfg: cfg, pubsub: ps, direct: direct, inspect: inspect}, nil
}

// Close closes the producer and the inspector's connections.
func (b *KafkaBackend) Close() error { return errors.Join(b.direct.Close(), b.inspect.Close()) }

// Backlog implements Inspector: the consumer group's lag on topic.
func (b *KafkaBackend) Backlog(ctx context.Context, topic, group string) (int64, error) {
	return b.inspect.Backlog(ctx, topic, group)
}

// TopicSize implements Inspector.
func (b *KafkaBackend) TopicSize(ctx context.Context, topic string) (int64, error) {
	return b.inspect.TopicSize(ctx, topic)
}

// Ping implements Pinger: a broker must answer.
func (b *KafkaBackend) Ping(ctx context.Context) error { return b.pubsub.Ping(ctx) }

// Publisher implements Backend.
func (b *KafkaBackend) Publisher() message.Publisher {
	return outboxPublisher{
		outbox: forwarder.NewPublisher(b.cfg.Outbox.Publisher(), forwarder.PublisherConfig{ForwarderTopic: OutboxTopic}),
		direct: b.direct,
	}
}

// Subscriber implements Backend; batch does not apply (a partition delivers
// one message at a time).
func (b *KafkaBackend) Subscriber(consumerGroup string, _ int) (message.Subscriber, error) {
	return b.pubsub.NewSubscriber(consumerGroup)
}

// BroadcastSubscriber implements Backend with a subscriber outside any
// group, starting at the newest offset.
func (b *KafkaBackend) BroadcastSubscriber(string) (message.Subscriber, error) {
	return b.pubsub.NewBroadcastSubscriber()
}

// InitTopics implements Backend: it creates the Kafka topics and the outbox.
func (b *KafkaBackend) InitTopics(ctx context.Context, topics []string) error {
	if err := b.pubsub.CreateTopics(ctx, topics); err != nil {
		return err
	}
	return b.cfg.Outbox.InitTopics(ctx, []string{OutboxTopic})
}

// UnitOfWork implements UnitOfWorker.
func (b *KafkaBackend) UnitOfWork() message.HandlerMiddleware {
	return UnitOfWork{DB: b.cfg.DB}.Middleware
}

// Run implements Runner: it forwards the outbox to Kafka until ctx is done.
func (b *KafkaBackend) Run(ctx context.Context) error {
	sub, err := b.cfg.Outbox.Subscriber(forwarderGroup, outboxBatch)
	if err != nil {
		return err
	}
	fwd, err := forwarder.NewForwarder(sub, b.direct, b.cfg.Logger, forwarder.Config{ForwarderTopic: OutboxTopic})
	if err != nil {
		return fmt.Errorf("outbox forwarder: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fwd.Run(context.WithoutCancel(ctx)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("outbox forwarder stopped: %w", err)
	case <-ctx.Done():
	}
	closeErr := fwd.Close()
	return errors.Join(closeErr, <-errc)
}

// outboxPublisher publishes into the outbox when the messages' context
// carries a transaction, else straight to Kafka.
type outboxPublisher struct {
	outbox, direct message.Publisher
}

func (p outboxPublisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if _, ok := storage.TxFrom(msgs[0].Context()); ok {
		return p.outbox.Publish(topic, msgs...)
	}
	return p.direct.Publish(topic, msgs...)
}

func (p outboxPublisher) Close() error { return nil }
