package sqlitepubsub

import (
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
)

// Test timings: short enough for the universal suite to finish quickly under
// -race, long enough that idle subscribers do not monopolize the write lock.
const (
	testPollInterval   = 10 * time.Millisecond
	testResendInterval = 5 * time.Millisecond
)

// newTestDB opens a fresh database file in t.TempDir(), closed at cleanup.
func newTestDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := OpenDB(filepath.Join(t.TempDir(), "test.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// testLogger returns a silent logger; flip to watermill.NewStdLogger(true,
// true) when debugging.
func testLogger() watermill.LoggerAdapter {
	return watermill.NopLogger{}
}

func newTestSubscriber(t testing.TB, db *sql.DB, cfg SubscriberConfig) *watermillsql.Subscriber {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = testPollInterval
	}
	if cfg.ResendInterval == 0 {
		cfg.ResendInterval = testResendInterval
	}
	sub, err := NewSubscriber(db, cfg, testLogger())
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func TestPubSub(t *testing.T) {
	// Every test of the suite gets its own database file; all pub/subs
	// created within one test (the suite calls the constructors several
	// times per test, e.g. for multiplied subscribers or consumer groups)
	// share it.
	var mu sync.Mutex
	dbs := map[testing.TB]*sql.DB{}
	dbFor := func(t *testing.T) *sql.DB {
		mu.Lock()
		defer mu.Unlock()
		if db, ok := dbs[t]; ok {
			return db
		}
		db := newTestDB(t)
		dbs[t] = db
		return db
	}

	consumerGroupPubSub := func(t *testing.T, consumerGroup string) (message.Publisher, message.Subscriber) {
		db := dbFor(t)
		pub, err := NewPublisher(db, testLogger())
		require.NoError(t, err)
		sub, err := NewSubscriber(db, SubscriberConfig{
			ConsumerGroup:  consumerGroup,
			PollInterval:   testPollInterval,
			ResendInterval: testResendInterval,
		}, testLogger())
		require.NoError(t, err)
		// Some suite tests leave subscribers open; stop them before the
		// database closes. (Close is idempotent.)
		t.Cleanup(func() { _ = sub.Close() })
		return pub, sub
	}
	pubSub := func(t *testing.T) (message.Publisher, message.Subscriber) {
		return consumerGroupPubSub(t, "test")
	}

	tests.TestPubSub(t, tests.Features{
		// Each group has its own offset row; every group gets every message.
		ConsumerGroups: true,
		// The offset is read, the batch delivered and the new offset
		// written under the database's write lock (BEGIN IMMEDIATE), so
		// no two subscribers of a group can deliver the same message.
		ExactlyOnceDelivery: true,
		// Delivery is in offset order and strictly serialized by the
		// write lock, even across many subscribers of one group; so we
		// leave GuaranteedOrderWithSingleSubscriber false, which makes the
		// suite check the order with 10 concurrent subscribers.
		GuaranteedOrder: true,
		// Messages live in the database file.
		Persistent: true,
		// The constructor's subscribers all use consumer group "test": a
		// new subscriber continues where the group stopped and does not
		// replay consumed messages (a new consumer group would).
		NewSubscriberReceivesOldMessages: false,
		// Message contexts are not persisted.
		ContextPreserved: false,
		// There is no server to restart: TestReconnect is skipped.
		RestartServiceCommand: nil,
	}, pubSub, consumerGroupPubSub)
}
