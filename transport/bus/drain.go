package bus

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrDraining is returned for messages that arrive while the process is
// shutting down; they are nacked untouched and handed to the next consumer.
var ErrDraining = errors.New("draining for shutdown")

// Drainer lets a shutdown wait for in-flight handlers to finish before the
// subscribers close. On SQL backends a handler writes in the consuming
// transaction, and a subscriber that closes mid-handler would commit the
// acknowledged part of its batch; draining first means a shutdown never
// splits a handler's effects.
type Drainer struct {
	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup
}

// Middleware refuses new messages once draining and tracks in-flight ones.
func (d *Drainer) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		d.mu.Lock()
		if d.draining {
			d.mu.Unlock()
			return nil, ErrDraining
		}
		d.inflight.Add(1)
		d.mu.Unlock()
		defer d.inflight.Done()
		return h(msg)
	}
}

// Drain stops taking messages and waits for in-flight handlers, or ctx.
func (d *Drainer) Drain(ctx context.Context) error {
	d.mu.Lock()
	d.draining = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		d.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
