package bus_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// TestPoisonPendingLeavesRequeuedOut counts the embedded poison queue with
// and without a row marked requeued.
func TestPoisonPendingLeavesRequeuedOut(t *testing.T) {
	ctx := context.Background()
	db, err := storage.OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := bus.SQLiteBackend{DB: db}
	if err := b.InitTopics(ctx, []string{bus.PoisonTopic}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := b.Publisher().Publish(bus.PoisonTopic, message.NewMessage(watermill.NewUUID(), []byte("{}"))); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int64 {
		t.Helper()
		n, err := b.PoisonPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("PoisonPending = %d, want 3", n)
	}
	if _, err := db.Write.ExecContext(ctx, `INSERT INTO `+bus.DLQRequeuedTable+` (poison_offset, uuid, topic, requeued_at)
		SELECT MIN("offset"), uuid, 'job_validate_v1', '2026-01-01T00:00:00Z' FROM `+sqlitepubsub.MessagesTable(bus.PoisonTopic)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("PoisonPending after a requeue = %d, want 2", n)
	}
	if n, err := b.TopicSize(ctx, bus.PoisonTopic); err != nil || n != 3 {
		t.Fatalf("TopicSize = %d, %v; want 3 (the log keeps every row)", n, err)
	}
}
