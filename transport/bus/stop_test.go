package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// TestStopBeforeHandlersStarted checks that a bus stopped before its router
// has started the handlers stops cleanly. watermill's Close, called before
// Run has started them, waits out CloseTimeout and fails with "router close
// timeout"; a service stopped within a moment of starting did so in tests.
// The context here is done before Run, so the bus goes straight to its
// shutdown while the router is starting.
func TestStopBeforeHandlersStarted(t *testing.T) {
	t.Parallel()
	db, err := storage.OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const drain = 3 * time.Second // the router's CloseTimeout too
	for i := range 5 {
		b, err := bus.New(bus.Config{Backend: bus.SQLiteBackend{DB: db, PollInterval: 10 * time.Millisecond}, DrainTimeout: drain})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.InitTopics(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := b.AddEventHandler(cqrs.NewEventHandler("noop", func(context.Context, *domain.JobProjected) error { return nil })); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		if err := b.Run(ctx); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		if took := time.Since(start); took >= drain {
			t.Fatalf("stop %d took %v: it waited out the close timeout", i, took)
		}
	}
}
