package bus_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/kafkapubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// newKafkaBackend returns the Kafka backend as the service builds it, with
// the embedded database as its outbox, on the cluster at brokers.
func newKafkaBackend(t *testing.T, brokers []string, sessionTimeout time.Duration) *bus.KafkaBackend {
	t.Helper()
	b, _ := newKafkaBackendDB(t, brokers, sessionTimeout)
	return b
}

// newKafkaBackendDB is newKafkaBackend that also returns the database.
func newKafkaBackendDB(t *testing.T, brokers []string, sessionTimeout time.Duration) (*bus.KafkaBackend, *storage.DB) {
	t.Helper()
	db, err := storage.OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	b, err := bus.NewKafkaBackend(bus.KafkaConfig{
		Kafka:  kafkapubsub.Config{Brokers: brokers, Partitions: 8, SessionTimeout: sessionTimeout},
		DB:     db,
		Outbox: bus.SQLiteBackend{DB: db},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, db
}

// TestKafkaPubSub runs Watermill's universal suite on the Kafka backend
// against an in-process Kafka-protocol cluster. Messages published outside
// a unit of work go straight to Kafka, as the suite's do.
func TestKafkaPubSub(t *testing.T) {
	t.Parallel()
	brokers := testenv.Kafka(t)
	cg := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		// kfake's shortest allowed session: the suite closes and opens
		// consumers of one group many times, and each one's departure is
		// only noticed after it.
		b := newKafkaBackend(t, brokers, 6*time.Second)
		sub, err := b.Subscriber(group, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b.Publisher(), sub
	}
	tests.TestPubSub(t, tests.Features{
		ConsumerGroups: true,
		// At least once: a consumer that leaves (or dies) before its
		// offsets are committed hands its messages to the next one.
		ExactlyOnceDelivery: false,
		// Order is per partition key; the suite's messages carry none.
		GuaranteedOrder: false,
		Persistent:      true,
		// A new subscriber in an existing group continues from the
		// group's offsets; a new group starts at the oldest offset
		// (TestConsumerGroups).
		NewSubscriberReceivesOldMessages: false,
	}, func(t *testing.T) (message.Publisher, message.Subscriber) { return cg(t, "test") }, cg)
}
