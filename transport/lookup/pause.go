package lookup

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// pause holds every attempt back after the provider answered 429 with a
// Retry-After: the budget it asked to wait for is the provider's, not one
// call's, so no request of this worker goes out before it passes. (The
// retried call itself also waits, through the retry middleware.) A call
// that would have to wait longer than its retry budget does not wait: its
// attempt fails as rate limited, which ends it as skipped. Safe for
// concurrent use.
type pause struct {
	mu     sync.Mutex
	until  time.Time
	now    func() time.Time
	budget time.Duration
}

// Middleware implements message.HandlerMiddleware.
func (p *pause) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if err := p.wait(msg.Context()); err != nil {
			return nil, err
		}
		out, err := h(msg)
		var rl *rateLimitedError
		if errors.As(err, &rl) && rl.retryAfter > 0 {
			p.extend(p.now().Add(rl.retryAfter))
		}
		return out, err
	}
}

// wait returns when no pause is in force, or ctx is done.
func (p *pause) wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		d := p.until.Sub(p.now())
		p.mu.Unlock()
		if d <= 0 {
			return nil
		}
		if d > p.budget {
			return &rateLimitedError{retryAfter: d}
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// extend makes the pause last at least until t.
func (p *pause) extend(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.After(p.until) {
		p.until = t
	}
}
