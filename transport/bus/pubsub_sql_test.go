package bus_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// sqlPubSub returns a constructor of the SQL backend exactly as the service
// configures it (bus.NewSQLBackend defaults, the bus's default batch). All
// pub/subs of one test share one pool, as the handlers of one process do;
// a pool per constructor call would exceed the server's connection limit
// in the suite's concurrent tests.
func sqlPubSub(open func(context.Context) (*storage.DB, error)) tests.ConsumerGroupPubSubConstructor {
	var (
		mu  sync.Mutex
		dbs = map[testing.TB]*storage.DB{}
	)
	dbFor := func(t *testing.T) *storage.DB {
		mu.Lock()
		defer mu.Unlock()
		if db, ok := dbs[t]; ok {
			return db
		}
		db, err := open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		dbs[t] = db
		return db
	}
	return func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		b, err := bus.NewSQLBackend(bus.SQLBackend{DB: dbFor(t)})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := b.Subscriber(group, bus.DefaultBatchSize)
		if err != nil {
			t.Fatal(err)
		}
		return b.Publisher(), sub
	}
}

// sqlFeatures are what watermill-sql's default adapters guarantee: the
// consumer group's offsets row is locked for the whole delivering
// transaction, so a group delivers each message once, in order, across
// any number of subscribers.
//
// ForceShort: the suite's long mode runs 50 subscribers of one group, each
// holding a connection while it waits for the group's lock, next to 50
// concurrent publishers — more than PostgreSQL's default 100 connections
// shared with the other tests. The short mode (10 subscribers) runs every
// test of the suite.
var sqlFeatures = tests.Features{
	ConsumerGroups:      true,
	ExactlyOnceDelivery: true,
	GuaranteedOrder:     true,
	Persistent:          true,
	ForceShort:          true,
}

func runSQLSuite(t *testing.T, dsn string, open func(context.Context, string) (*storage.DB, error)) {
	cg := sqlPubSub(func(ctx context.Context) (*storage.DB, error) { return open(ctx, dsn) })
	tests.TestPubSub(t, sqlFeatures,
		func(t *testing.T) (message.Publisher, message.Subscriber) { return cg(t, "test") }, cg)
}

func TestPostgresPubSub(t *testing.T) {
	t.Parallel()
	runSQLSuite(t, testenv.PostgresAlone(t), storage.OpenPostgres)
}

func TestMySQLPubSub(t *testing.T) {
	t.Parallel()
	runSQLSuite(t, testenv.MySQL(t), storage.OpenMySQL)
}
