package bus_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/bus"
)

// runOneMessage starts a bus with cfg and one JobProjected handler named
// name, and publishes one JobProjected. The returned stop ends the bus and
// fails the test if it ended with an error.
func runOneMessage(t *testing.T, cfg bus.Config, name string, h func(context.Context, *domain.JobProjected) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := bus.New(cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := b.InitTopics(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := b.AddEventHandler(cqrs.NewEventHandler(name, h)); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	if err := b.Events().Publish(ctx, &domain.JobProjected{ImportID: "imp", Job: 1}); err != nil {
		cancel()
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("bus: %v", err)
		}
	}
}
