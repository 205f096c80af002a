package sqlitepubsub

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
)

func TestZZStarvation(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()
	require.NoError(t, InitializeTopic(ctx, db, "backlog"))
	pub, err := NewPublisher(db, testLogger())
	require.NoError(t, err)
	var msgs []*message.Message
	for i := 0; i < 10000; i++ {
		msgs = append(msgs, message.NewMessage(watermill.NewUUID(), []byte("x")))
		if len(msgs) == 5000 {
			require.NoError(t, pub.Publish("backlog", msgs...))
			msgs = nil
		}
	}
	_, err = db.Exec(`CREATE TABLE other (x INTEGER)`)
	require.NoError(t, err)
	sub := newTestSubscriber(t, db, SubscriberConfig{ConsumerGroup: "g", PollInterval: 100 * time.Millisecond})
	ch, err := sub.Subscribe(ctx, "backlog")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		n := 0
		for m := range ch {
			_ = 0
			m.Ack()
			n++
			if n == 10000 {
				close(done)
			}
		}
	}()
	start := time.Now()
	var worst time.Duration
	writes := 0
	for {
		select {
		case <-done:
			t.Logf("drained in %s; %d writes, worst write latency %s", time.Since(start), writes, worst)
			return
		default:
		}
		s := time.Now()
		_, err := db.Exec(`INSERT INTO other VALUES (1)`)
		if err != nil {
			t.Logf("write failed after %s: %v", time.Since(s), err)
		}
		if d := time.Since(s); d > worst {
			worst = d
		}
		writes++
		time.Sleep(20 * time.Millisecond)
	}
}
