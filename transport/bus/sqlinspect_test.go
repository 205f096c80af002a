package bus_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// TestSQLBackendInspector: a group's backlog shrinks as it acknowledges.
func TestSQLBackendInspector(t *testing.T) {
	for name, open := range map[string]func(context.Context, *testing.T) (*storage.DB, error){
		"postgres": func(ctx context.Context, t *testing.T) (*storage.DB, error) {
			return storage.OpenPostgres(ctx, testenv.Postgres(t))
		},
		"mysql": func(ctx context.Context, t *testing.T) (*storage.DB, error) {
			return storage.OpenMySQL(ctx, testenv.MySQL(t))
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := open(ctx, t)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			b, err := bus.NewSQLBackend(bus.SQLBackend{DB: db})
			if err != nil {
				t.Fatal(err)
			}
			const topic = "inspected"
			if err := b.InitTopics(ctx, []string{topic}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("{}"))); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := b.Backlog(ctx, topic, "g"); err != nil || n != 3 {
				t.Fatalf("backlog %d (%v), want 3", n, err)
			}
			sub, err := b.Subscriber("g", 1)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			ch, err := sub.Subscribe(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			(<-ch).Ack()
			m := <-ch // the first batch (of one) is committed once the second is read
			if n, err := b.Backlog(ctx, topic, "g"); err != nil || n != 2 {
				t.Fatalf("backlog %d (%v), want 2", n, err)
			}
			m.Ack()
			if n, err := b.TopicSize(ctx, topic); err != nil || n != 3 {
				t.Fatalf("size %d (%v), want 3", n, err)
			}
		})
	}
}
