package kafkapubsub

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Config configures the Kafka Pub/Sub.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Partitions is the partition count of topics this package creates:
	// the most processes of one role that can work at once. Default 12.
	Partitions int32
	// ReplicationFactor of created topics. Default 1 (a single broker).
	ReplicationFactor int16
	// PartitionKey returns the key of an outgoing message; messages with
	// the same key stay in one partition, in order. Default: the message
	// UUID (no order between messages).
	PartitionKey func(topic string, msg *message.Message) string
	// SessionTimeout is how long a silent consumer keeps its partitions
	// before the group hands them to another member. Default 10s.
	SessionTimeout time.Duration
	// ClientID names the client to the brokers. Default "phonepipe".
	ClientID string
}

func (c *Config) setDefaults() {
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.PartitionKey == nil {
		c.PartitionKey = func(_ string, msg *message.Message) string { return msg.UUID }
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.ClientID == "" {
		c.ClientID = "phonepipe"
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("kafka: broker %q is not host:port: %w", b, err)
		}
	}
	if c.Partitions < 1 || c.ReplicationFactor < 1 {
		return errors.New("kafka: partitions and replication factor must be positive")
	}
	if c.SessionTimeout < 0 {
		return errors.New("kafka: negative session timeout")
	}
	return nil
}

// ParseBrokers splits a comma-separated host:port list.
func ParseBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// kafkaVersion is the protocol version the clients speak: 2.8 is old enough
// for every broker in use and new enough for idempotent producers and
// modern consumer groups.
var kafkaVersion = sarama.V2_8_0_0

// saramaConfig is the client configuration shared by every client.
func (c Config) saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	sc.Version = kafkaVersion
	sc.Metadata.Retry.Backoff = 500 * time.Millisecond
	sc.Admin.Timeout = 30 * time.Second
	return sc
}

// producerConfig: acks=all and an idempotent producer, so a retried send
// neither loses nor duplicates a record within a partition.
func (c Config) producerConfig() *sarama.Config {
	sc := c.saramaConfig()
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1 // required by the idempotent producer
	sc.Producer.Retry.Max = 10
	sc.Producer.Retry.Backoff = 200 * time.Millisecond
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	return sc
}

// consumerConfig starts a group without committed offsets at initial.
func (c Config) consumerConfig(initial int64) *sarama.Config {
	sc := c.saramaConfig()
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = initial
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = c.SessionTimeout / 4
	sc.Consumer.Group.Rebalance.Timeout = 2 * c.SessionTimeout
	sc.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	return sc
}
