package kafkapubsub_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/kafkapubsub"
)

// TestInspector checks topic size and consumer-group lag against a real
// Kafka-protocol broker (kfake): a group that has read nothing lags by the
// whole topic, one that has acknowledged everything by nothing.
func TestInspector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := kafkapubsub.New(kafkapubsub.Config{Brokers: testenv.Kafka(t), Partitions: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const topic, total = "inspected", 10
	if err := ps.CreateTopics(ctx, []string{topic}); err != nil {
		t.Fatal(err)
	}
	pub, err := ps.NewPublisher()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for range total {
		if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	insp, err := ps.NewInspector()
	if err != nil {
		t.Fatal(err)
	}
	defer insp.Close()
	if n, err := insp.TopicSize(ctx, topic); err != nil || n != total {
		t.Fatalf("TopicSize = %d, %v; want %d", n, err, total)
	}
	if n, err := insp.Backlog(ctx, topic, "idle"); err != nil || n != total {
		t.Fatalf("Backlog of a group that read nothing = %d, %v; want %d", n, err, total)
	}

	sub, err := ps.NewSubscriber("reader")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for range total {
		select {
		case m := <-msgs:
			m.Ack()
		case <-ctx.Done():
			t.Fatal("messages not delivered")
		}
	}
	for {
		n, err := insp.Backlog(ctx, topic, "reader")
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Backlog of a group that acknowledged everything stays %d", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, err := insp.Backlog(ctx, topic, "idle"); err != nil || n != total {
		t.Fatalf("Backlog of the idle group = %d, %v; want still %d", n, err, total)
	}
}
