package kafkapubsub

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// PubSub builds Kafka publishers and subscribers of one configuration.
type PubSub struct {
	cfg    Config
	logger watermill.LoggerAdapter
}

// New checks cfg and returns its PubSub.
func New(cfg Config, logger watermill.LoggerAdapter) (*PubSub, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &PubSub{cfg: cfg, logger: logger}, nil
}

// Config returns the configuration with defaults applied.
func (p *PubSub) Config() Config { return p.cfg }

func (p *PubSub) marshaler() kafka.MarshalerUnmarshaler {
	return kafka.NewWithPartitioningMarshaler(func(topic string, msg *message.Message) (string, error) {
		return p.cfg.PartitionKey(topic, msg), nil
	})
}

// NewPublisher returns a synchronous publisher: Publish returns once every
// in-sync replica has the messages.
func (p *PubSub) NewPublisher() (message.Publisher, error) {
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               p.cfg.Brokers,
		Marshaler:             p.marshaler(),
		OverwriteSaramaConfig: p.cfg.producerConfig(),
	}, p.logger)
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	return pub, nil
}

// NewSubscriber returns a subscriber in consumerGroup. A group that has no
// committed offset starts at the oldest message. Within a partition a
// message is delivered after the previous one was acknowledged; different
// partitions are delivered concurrently.
func (p *PubSub) NewSubscriber(consumerGroup string) (message.Subscriber, error) {
	if consumerGroup == "" {
		return nil, errors.New("kafka subscriber: empty consumer group")
	}
	return p.subscriber(consumerGroup, sarama.OffsetOldest)
}

// NewBroadcastSubscriber returns a subscriber outside any consumer group
// that reads every partition from the newest offset: each one gets every
// message published after it subscribed.
func (p *PubSub) NewBroadcastSubscriber() (message.Subscriber, error) {
	return p.subscriber("", sarama.OffsetNewest)
}

func (p *PubSub) subscriber(group string, initial int64) (message.Subscriber, error) {
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               p.cfg.Brokers,
		Unmarshaler:           p.marshaler(),
		OverwriteSaramaConfig: p.cfg.consumerConfig(initial),
		ConsumerGroup:         group,
		NackResendSleep:       100 * millisecond,
		ReconnectRetrySleep:   500 * millisecond,
		InitializeTopicDetails: &sarama.TopicDetail{
			NumPartitions:     p.cfg.Partitions,
			ReplicationFactor: p.cfg.ReplicationFactor,
			ConfigEntries:     topicConfig(),
		},
	}, p.logger)
	if err != nil {
		return nil, fmt.Errorf("kafka subscriber for %q: %w", group, err)
	}
	return sub, nil
}
