package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// receive reads n messages from topic in a new consumer group.
func receive(t *testing.T, b *bus.KafkaBackend, topic string, n int) []*message.Message {
	t.Helper()
	sub, err := b.Subscriber("reader-"+watermill.NewShortUUID(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*message.Message
	for len(out) < n {
		select {
		case m := <-ch:
			m.Ack()
			out = append(out, m)
		case <-ctx.Done():
			t.Fatalf("received %d of %d messages", len(out), n)
		}
	}
	return out
}

// TestKafkaKeepsOrderPerPartitionKey: messages with one partition key stay
// in publishing order, whatever the partition count.
func TestKafkaKeepsOrderPerPartitionKey(t *testing.T) {
	t.Parallel()
	b := newKafkaBackend(t, testenv.Kafka(t), 0)
	topic := "ordered"
	if err := b.InitTopics(context.Background(), []string{topic}); err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 4, 25
	for i := range perKey {
		for k := range keys {
			m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
			m.Metadata.Set(bus.PartitionKeyMetadata, fmt.Sprint("key-", k))
			if err := b.Publisher().Publish(topic, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	next := map[string]int{}
	for _, m := range receive(t, b, topic, keys*perKey) {
		k := m.Metadata.Get(bus.PartitionKeyMetadata)
		if got := string(m.Payload); got != fmt.Sprint(next[k]) {
			t.Fatalf("%s: got %s, want %d", k, got, next[k])
		}
		next[k]++
	}
}

// TestKafkaOutboxForwardsWhatCommits: a message published inside a unit of
// work reaches Kafka through the outbox once its transaction commits, and
// never when it rolls back.
func TestKafkaOutboxForwardsWhatCommits(t *testing.T) {
	t.Parallel()
	b, db := newKafkaBackendDB(t, testenv.Kafka(t), 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const topic = "forwarded"
	if err := b.InitTopics(ctx, []string{topic}); err != nil {
		t.Fatal(err)
	}
	publishIn := func(payload string, commit bool) {
		tx, err := db.Write.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := message.NewMessage(watermill.NewUUID(), []byte(payload))
		m.SetContext(storage.WithTx(ctx, tx))
		if err := b.Publisher().Publish(topic, m); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	publishIn("rolled back", false)
	publishIn("first", true)
	publishIn("second", true)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	got := map[string]bool{}
	for _, m := range receive(t, b, topic, 2) {
		got[string(m.Payload)] = true
	}
	if !got["first"] || !got["second"] {
		t.Fatalf("forwarded %v, want first and second", got)
	}
	var n int
	if err := db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM "watermill_outbox"`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d messages in the outbox, want the 2 committed ones", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("forwarder: %v", err)
	}
}

// TestKafkaTopicsKeepEverything: created topics have unlimited retention
// and the configured partition count.
func TestKafkaTopicsKeepEverything(t *testing.T) {
	t.Parallel()
	brokers := testenv.Kafka(t)
	b := newKafkaBackend(t, brokers, 0)
	if err := b.InitTopics(context.Background(), []string{"kept"}); err != nil {
		t.Fatal(err)
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	retention := ""
	for _, e := range entries {
		if e.Name == "retention.ms" {
			retention = e.Value
		}
	}
	if retention != "-1" {
		t.Fatalf("retention.ms = %q, want -1", retention)
	}
	meta, err := admin.DescribeTopics([]string{"kept"})
	if err != nil || len(meta) != 1 || len(meta[0].Partitions) != 8 {
		t.Fatalf("topic metadata %v (%v), want 8 partitions", meta, err)
	}
}
