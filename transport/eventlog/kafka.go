package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"

	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/bus"
)

// KafkaConfig configures a Kafka event log.
type KafkaConfig struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Stall bounds how long a partition may deliver nothing while records
	// below its high watermark are still expected. Default 30s.
	Stall time.Duration
}

func (c *KafkaConfig) setDefaults() {
	if c.Stall <= 0 {
		c.Stall = 30 * time.Second
	}
}

// Validate checks the configuration.
func (c KafkaConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka event log: no brokers")
	}
	return nil
}

// Kafka is the event log of the Kafka backend: every partition of a topic
// read from its oldest record, outside any consumer group (nothing is
// committed, no group is left behind), up to the high watermark each read
// starts with. Order across partitions does not matter to a replay.
type Kafka struct {
	cfg      KafkaConfig
	client   sarama.Client
	consumer sarama.Consumer
}

var _ projections.EventLog = (*Kafka)(nil)

// NewKafka connects to the brokers; Close disconnects.
func NewKafka(cfg KafkaConfig) (*Kafka, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := sarama.NewConfig()
	sc.ClientID = "phonepipe-replay"
	sc.Version = sarama.V2_8_0_0
	sc.Consumer.Return.Errors = true
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("kafka event log: connect: %w", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("kafka event log: consumer: %w", err), client.Close())
	}
	return &Kafka{cfg: cfg, client: client, consumer: consumer}, nil
}

// Close disconnects.
func (k *Kafka) Close() error {
	return errors.Join(k.consumer.Close(), k.client.Close())
}

// Reader implements projections.EventLog.
func (k *Kafka) Reader(message string) (projections.LogReader, error) {
	return &kafkaReader{k: k, topic: bus.Topic(message), next: map[int32]int64{}}, nil
}

// LockConsumer implements projections.EventLog. Kafka consumer groups
// cannot be held; the swap transaction holds the handlers instead, through
// the projection tables they write (storage.Shadow.LockLive, or SQLite's
// write lock).
func (k *Kafka) LockConsumer(context.Context, *sql.Tx, string, string, string) error { return nil }

// kafkaReader reads one topic. next holds, per partition, the offset of
// the next record to read (absent: the oldest).
type kafkaReader struct {
	k     *Kafka
	topic string
	next  map[int32]int64
}

// Seek implements projections.LogReader.
func (r *kafkaReader) Seek(at projections.LogPosition) {
	p, _ := at.(map[int32]int64)
	r.next = maps.Clone(p)
	if r.next == nil {
		r.next = map[int32]int64{}
	}
}

// Next implements projections.LogReader; th does not apply.
func (r *kafkaReader) Next(ctx context.Context, _ projections.Through, fn func(projections.LogPosition, projections.LogMessage) error) error {
	if err := r.k.client.RefreshMetadata(r.topic); err != nil {
		return fmt.Errorf("kafka topic %s: %w", r.topic, err)
	}
	parts, err := r.k.client.Partitions(r.topic)
	if err != nil {
		return fmt.Errorf("kafka topic %s: %w", r.topic, err)
	}
	slices.Sort(parts)
	for _, p := range parts {
		if err := r.readPartition(ctx, p, fn); err != nil {
			return err
		}
	}
	return nil
}

// readPartition reads one partition up to its current high watermark.
func (r *kafkaReader) readPartition(ctx context.Context, p int32, fn func(projections.LogPosition, projections.LogMessage) error) error {
	high, err := r.k.client.GetOffset(r.topic, p, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("kafka %s/%d: high watermark: %w", r.topic, p, err)
	}
	start, ok := r.next[p]
	if !ok {
		if start, err = r.k.client.GetOffset(r.topic, p, sarama.OffsetOldest); err != nil {
			return fmt.Errorf("kafka %s/%d: oldest offset: %w", r.topic, p, err)
		}
	}
	if start >= high {
		return nil
	}
	pc, err := r.k.consumer.ConsumePartition(r.topic, p, start)
	if err != nil {
		return fmt.Errorf("kafka %s/%d: consume from %d: %w", r.topic, p, start, err)
	}
	defer pc.AsyncClose()
	stall := time.NewTimer(r.k.cfg.Stall)
	defer stall.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stall.C:
			return fmt.Errorf("kafka %s/%d: no record for %s below the high watermark %d", r.topic, p, r.k.cfg.Stall, high)
		case cerr := <-pc.Errors():
			return fmt.Errorf("kafka %s/%d: %w", r.topic, p, cerr)
		case rec := <-pc.Messages():
			stall.Reset(r.k.cfg.Stall)
			msg, err := kafka.DefaultMarshaler{}.Unmarshal(rec)
			if err != nil {
				return fmt.Errorf("kafka %s/%d@%d: %w", r.topic, p, rec.Offset, err)
			}
			at := maps.Clone(r.next)
			at[p] = rec.Offset
			r.next[p] = rec.Offset + 1
			if err := fn(at, projections.LogMessage{UUID: msg.UUID, Name: msg.Metadata.Get("name"), Payload: msg.Payload}); err != nil {
				return err
			}
			if rec.Offset+1 >= high {
				return nil
			}
		}
	}
}
