package lookup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"

	"github.com/phonepipe/phonepipe/domain"
)

// CallStore is the durable state of lookup calls (projections.LookupCalls).
type CallStore interface {
	// ClaimDue leases up to limit due calls to token.
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, token string, limit int) ([]domain.LookupCall, error)
	// Settle records a leased call's outcome in the unit of work of ctx;
	// false means the lease was lost and nothing was recorded.
	Settle(ctx context.Context, token string, c domain.LookupCall, lk domain.Lookup, at time.Time) (bool, error)
	// Release gives a lease back without an outcome.
	Release(ctx context.Context, token string, c domain.LookupCall) error
}

// StreamVersions hands out the next versions of streams in the unit of work
// of ctx (storage.StreamHeads).
type StreamVersions interface {
	Next(ctx context.Context, streams []domain.StreamID) ([]int64, error)
}

// EventPublisher publishes events in the unit of work of ctx.
type EventPublisher interface {
	Publish(ctx context.Context, event any) error
}

// Transactor runs fn in a new unit of work, committed when fn returns nil.
type Transactor func(ctx context.Context, fn func(ctx context.Context) error) error

// WorkerConfig configures a Worker: the call policy and the ports.
type WorkerConfig struct {
	Config
	Store   CallStore
	Streams StreamVersions
	Events  EventPublisher
	InTx    Transactor
}

// Validate checks the configuration.
func (c WorkerConfig) Validate() error {
	if c.Store == nil || c.Streams == nil || c.Events == nil || c.InTx == nil {
		return errors.New("lookup: worker needs a store, stream versions, an event publisher and a transactor")
	}
	return c.Config.Validate()
}

// Worker makes the lookup calls that are due. Several workers, in one
// process or many, may share a database: each call is leased to one of
// them at a time.
type Worker struct {
	cfg    WorkerConfig
	client *Client
	pause  *pause
	rec    *recorder
}

// NewWorker validates cfg, fills in its defaults and returns a Worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := NewClient(cfg.Config)
	if err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, client: client, pause: &pause{now: cfg.Now, budget: cfg.RetryBudget}}, nil
}

// Run makes due calls until ctx is done. Then it stops claiming, lets the
// calls in flight end (an interrupted one gives its lease back, so it is
// made again later), records the outcomes it has and returns. Database
// errors are logged and retried at the next poll.
func (w *Worker) Run(ctx context.Context) error {
	router, pubsub, err := w.newRouter()
	if err != nil {
		return err
	}
	routerCtx, stopRouter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRouter()
	routerErr := make(chan error, 1)
	go func() { routerErr <- router.Run(routerCtx) }()
	select {
	case <-router.Running():
	case err := <-routerErr:
		return fmt.Errorf("lookup: router stopped: %w", err)
	}
	w.rec = newRecorder(w.cfg)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		w.rec.run(context.WithoutCancel(ctx))
	}()

	w.claimLoop(ctx, pubsub)

	closeErr := router.Close()
	<-routerErr
	w.rec.close()
	<-recorded
	w.client.CloseIdleConnections()
	if closeErr != nil {
		return fmt.Errorf("lookup: close router: %w", closeErr)
	}
	return nil
}

// claimLoop claims due calls while slots are free and publishes each to
// the router, until ctx is done and the calls in flight have ended.
func (w *Worker) claimLoop(ctx context.Context, pubsub *gochannel.GoChannel) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, w.cfg.Concurrency)
	freed := make(chan struct{}, 1)
	timer := time.NewTimer(0)
	defer timer.Stop()
	lease := w.cfg.lease()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-freed:
		}
		free := cap(slots) - len(slots)
		claimed := 0
		if free > 0 {
			token := "lease_" + uuid.NewString()
			calls, err := w.cfg.Store.ClaimDue(ctx, w.cfg.Now(), lease, token, free)
			if err != nil && ctx.Err() == nil {
				w.cfg.Logger.ErrorContext(ctx, "lookup: claiming calls", "error", err)
			}
			for _, c := range calls {
				if c.Attempts > w.cfg.MaxClaims {
					at := w.cfg.Now().UTC()
					w.rec.add(settled{call: c, token: token, at: at, lookup: domain.Lookup{
						Status: domain.LookupFailed, Reason: domain.LookupReasonAbandoned, LookedUpAt: &at}})
					continue
				}
				slots <- struct{}{} // never blocks: only this loop fills slots, and len(calls) <= free
				wg.Add(1)
				f := &inflight{ctx: ctx, call: c, token: token, finished: func() {
					<-slots
					wg.Done()
					select {
					case freed <- struct{}{}:
					default:
					}
				}}
				msg := message.NewMessage(uuid.NewString(), []byte(c.E164))
				msg.SetContext(context.WithValue(ctx, inflightKey{}, f))
				if err := pubsub.Publish(callTopic, msg); err != nil {
					w.cfg.Logger.ErrorContext(ctx, "lookup: handing a call to the router", "error", err)
					w.release(ctx, token, c)
					f.done()
				}
			}
			claimed = len(calls)
		}
		wait := w.cfg.PollInterval
		if free > 0 && claimed == free {
			wait = 0 // there may be more due right now
		}
		timer.Reset(wait)
	}
}

// release gives a call's lease back, even when ctx is done.
func (w *Worker) release(ctx context.Context, token string, c domain.LookupCall) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.cfg.Store.Release(rctx, token, c); err != nil {
		w.cfg.Logger.ErrorContext(ctx, "lookup: releasing a call", "e164", c.E164, "error", err)
	}
}
