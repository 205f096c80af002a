package app

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"golang.org/x/sync/errgroup"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/lookup"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// lookupStage is this process's part of the third-party lookup stage.
type lookupStage struct {
	enabled  bool
	store    *projections.Lookups
	worker   *lookup.Worker
	watchdog *lookup.Watchdog
}

// enqueuer is the projector's port to the stage: nil when it is off.
func (s *lookupStage) enqueuer() handlers.LookupEnqueuer {
	if !s.enabled {
		return nil
	}
	return s.store
}

// wireLookups wires the stage's parts of this process's roles: the worker
// (lookup role) when the stage is on; the lookup projector (project) and
// the deadline watchdog (aggregate) always, so that what the stage left
// behind when it was on — recorded lookups holding versions of number
// streams, rows waiting — is still projected and ended after it is
// turned off.
func (a *App) wireLookups(imports *projections.LookupImports, events handlers.EventPublisher,
	handled handlers.Deduper) (*lookupStage, error) {
	cfg := a.cfg.Lookup
	store, err := projections.NewLookups(a.db, projections.LookupsConfig{TTL: cfg.TTL})
	if err != nil {
		return nil, err
	}
	s := &lookupStage{enabled: cfg.Enabled(), store: store}
	inTx := func(ctx context.Context, fn func(ctx context.Context) error) error {
		return storage.InTx(ctx, a.db.Write, fn)
	}
	if a.cfg.has(RoleProject) {
		h := handlers.LookupProjector{Lookups: store, Events: events, Dedupe: handled}
		if err := a.bus.AddEventHandler(cqrs.NewEventHandler(h.HandlerName(), h.Handle)); err != nil {
			return nil, fmt.Errorf("register %s: %w", h.HandlerName(), err)
		}
		a.addLagGauge(handlers.LookupProjectorName, domain.NameLookupsRecorded)
	}
	if a.cfg.has(RoleLookup) && s.enabled {
		policy := cfg.policy()
		policy.Logger, policy.Observer = a.logger, a.metrics.Lookup()
		calls := projections.NewLookupCalls(a.db)
		if s.worker, err = lookup.NewWorker(lookup.WorkerConfig{Config: policy, Store: calls,
			Streams: storage.NewStreamHeads(a.db), Events: events, InTx: inTx}); err != nil {
			return nil, err
		}
		a.metrics.AddGauge("lookup_calls_pending", "Third-party lookups requested and not yet done.", nil,
			func(ctx context.Context) (float64, error) {
				n, err := calls.Pending(ctx)
				return float64(n), err
			})
	}
	if a.cfg.has(RoleAggregate) {
		if s.watchdog, err = lookup.NewWatchdog(lookup.WatchdogConfig{Deadline: cfg.Deadline, Imports: imports,
			Waiters: store, Events: events, InTx: inTx, Logger: a.logger}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// addLagGauge reports a consumer's lag on its topic, when the backend can.
func (a *App) addLagGauge(consumer, name string) {
	insp, ok := a.bus.Backend().(bus.Inspector)
	if !ok {
		return
	}
	topic := bus.Topic(name)
	a.metrics.AddGauge("consumer_lag_messages", "Messages a consumer (projection or stage) has not yet handled: its lag behind the head of its topic.",
		map[string]string{"consumer": consumer}, func(ctx context.Context) (float64, error) {
			n, err := insp.Backlog(ctx, topic, consumer)
			return float64(n), err
		})
}

// run runs the stage's loops of this process under g.
func (s *lookupStage) run(ctx context.Context, g *errgroup.Group) {
	if s.worker != nil {
		g.Go(func() error { return s.worker.Run(ctx) })
	}
	if s.watchdog != nil {
		g.Go(func() error { return s.watchdog.Run(ctx) })
	}
}
