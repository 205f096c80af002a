package sqlitepubsub

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// BenchmarkPublishSubscribe measures end-to-end throughput: b.N messages
// published (one Publish, i.e. one autocommit transaction, per message, or
// in batches of 100) while one subscriber consumes and acks them; the time
// runs until the last message is acked.
func BenchmarkPublishSubscribe(b *testing.B) {
	for _, publishBatch := range []int{1, 100} {
		for _, subscribeBatch := range []int{1, 100} {
			b.Run(fmt.Sprintf("publish=%d/subscribe=%d", publishBatch, subscribeBatch), func(b *testing.B) {
				benchmarkPublishSubscribe(b, publishBatch, subscribeBatch)
			})
		}
	}
}

func benchmarkPublishSubscribe(b *testing.B, publishBatch, subscribeBatch int) {
	db := newTestDB(b)
	ctx := context.Background()
	const topic = "bench"
	if err := InitializeTopic(ctx, db, topic); err != nil {
		b.Fatal(err)
	}
	pub, err := NewPublisher(db, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	sub := newTestSubscriber(b, db, SubscriberConfig{
		ConsumerGroup: "bench",
		BatchSize:     subscribeBatch,
		PollInterval:  time.Millisecond,
	})
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	published := make(chan error, 1)
	go func() {
		batch := make([]*message.Message, 0, publishBatch)
		for i := 0; i < b.N; i++ {
			batch = append(batch, message.NewMessage(watermill.NewUUID(), payload))
			if len(batch) == publishBatch || i == b.N-1 {
				if err := pub.Publish(topic, batch...); err != nil {
					published <- err
					return
				}
				batch = batch[:0]
			}
		}
		published <- nil
	}()

	timeout := time.After(5 * time.Minute)
	for received := 0; received < b.N; received++ {
		select {
		case msg := <-msgs:
			msg.Ack()
		case <-timeout:
			b.Fatalf("received %d of %d messages", received, b.N)
		}
	}
	b.StopTimer()
	if err := <-published; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
