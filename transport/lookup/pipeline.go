package lookup

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/sony/gobreaker"

	"github.com/phonepipe/phonepipe/domain"
)

// callTopic is the in-process topic claimed calls travel on.
const callTopic = "lookup.call"

// inflight is one claimed call on its way through the router. Its context
// (the worker's run context) carries it to the handler; the handler and
// its middleware run on one goroutine, so its fields need no lock.
type inflight struct {
	ctx      context.Context
	call     domain.LookupCall
	token    string
	attempts int
	result   domain.Lookup
	once     sync.Once
	finished func()
}

// done frees the call's slot, once.
func (f *inflight) done() { f.once.Do(f.finished) }

type inflightKey struct{}

// inflightFrom returns the call a message carries.
func inflightFrom(msg *message.Message) (*inflight, bool) {
	f, ok := msg.Context().Value(inflightKey{}).(*inflight)
	return f, ok
}

// newRouter builds the in-process router that makes the calls: a
// gochannel pub/sub (handling each message on its own goroutine, so the
// claim loop's slots bound the concurrency) and one handler wrapped, from
// the outside in, in: settle (records the outcome, always acks), Recoverer,
// Retry (bounded, backoff, Retry-After), CircuitBreaker, Throttle (rate,
// per attempt), pause (the provider's Retry-After for everyone) and
// Timeout (per attempt).
func (w *Worker) newRouter() (*message.Router, *gochannel.GoChannel, error) {
	logger := watermill.NewSlogLoggerWithLevelMapping(w.cfg.Logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
	pubsub := gochannel.NewGoChannel(gochannel.Config{PreserveContext: true}, logger)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: w.cfg.Timeout + 5*time.Second}, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("lookup: router: %w", err)
	}
	h := router.AddConsumerHandler("lookup", callTopic, pubsub, w.call)
	retry := middleware.Retry{
		MaxRetries:          w.cfg.MaxRetries,
		InitialInterval:     w.cfg.RetryInitial,
		MaxInterval:         w.cfg.RetryMax,
		Multiplier:          2,
		MaxElapsedTime:      w.cfg.RetryBudget,
		RandomizationFactor: 0.2,
		ShouldRetry:         func(p middleware.RetryParams) bool { return retryable(p.Err) },
		ResetContextOnRetry: true,
	}
	breaker := middleware.NewCircuitBreaker(gobreaker.Settings{
		Name:        "lookup",
		MaxRequests: 1,
		Timeout:     w.cfg.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(w.cfg.BreakerFailures)
		},
		IsSuccessful: providerHealthy,
		OnStateChange: func(_ string, from, to gobreaker.State) {
			w.cfg.Logger.Warn("lookup: circuit breaker changed", "from", from.String(), "to", to.String())
			if w.cfg.Observer != nil {
				w.cfg.Observer.CircuitChanged(from.String(), to.String())
			}
		},
	})
	mw := []message.HandlerMiddleware{w.settle, middleware.Recoverer, retry.Middleware, breaker.Middleware}
	if w.cfg.Rate > 0 {
		interval := time.Duration(float64(time.Second) / w.cfg.Rate)
		mw = append(mw, middleware.NewThrottle(1, max(interval, time.Microsecond)).Middleware)
	}
	mw = append(mw, w.pause.Middleware, middleware.Timeout(w.cfg.Timeout))
	h.AddMiddleware(mw...)
	return router, pubsub, nil
}

// call makes one attempt of a call: the innermost handler.
func (w *Worker) call(msg *message.Message) error {
	f, ok := inflightFrom(msg)
	if !ok {
		return fmt.Errorf("lookup: message %s carries no call: %w", msg.UUID, domain.ErrPermanent)
	}
	f.attempts++
	lk, err := w.client.Lookup(msg.Context(), f.call.E164)
	if err != nil {
		return err
	}
	f.result = lk
	return nil
}

// settle is the outermost middleware: it turns the call's final result or
// error into its outcome and hands it to the recorder, or gives the lease
// back when the worker is stopping. It always acks: a call is never
// redelivered in process (a lost outcome is retried through the lease).
func (w *Worker) settle(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		f, ok := inflightFrom(msg)
		if !ok {
			w.cfg.Logger.Error("lookup: message without a call", "message_uuid", msg.UUID)
			return nil, nil
		}
		defer f.done()
		_, err := h(msg)
		var lk domain.Lookup
		switch {
		case err == nil:
			lk = f.result
		case f.ctx.Err() != nil:
			w.release(f.ctx, f.token, f.call)
			return nil, nil
		default:
			lk = outcomeOf(err)
			w.cfg.Logger.Debug("lookup: call ended without an answer", "e164", f.call.E164,
				"status", lk.Status, "reason", lk.Reason, "attempts", f.attempts, "error", err)
		}
		at := w.cfg.Now().UTC()
		lk.Attempts, lk.LookedUpAt = f.attempts, &at
		w.rec.add(settled{call: f.call, token: f.token, lookup: lk, at: at})
		return nil, nil
	}
}
