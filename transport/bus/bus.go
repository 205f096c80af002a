package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// Config configures a Bus.
type Config struct {
	Backend Backend
	Logger  *slog.Logger
	// MaxRetries bounds how often a failing message is retried before it
	// goes to the poison queue. Default 5.
	MaxRetries int
	// RetryInterval is the first backoff interval. Default 100ms.
	RetryInterval time.Duration
	// BatchSize is how many messages a handler's subscriber takes at once,
	// by handler name; DefaultBatchSize otherwise.
	BatchSize map[string]int
	// DrainTimeout bounds how long shutdown waits for in-flight handlers.
	DrainTimeout time.Duration
}

// DefaultBatchSize is the subscriber batch of handlers not in Config.BatchSize.
const DefaultBatchSize = 50

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = 100 * time.Millisecond
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Backend == nil {
		return errors.New("bus: missing backend")
	}
	if c.MaxRetries < 0 {
		return errors.New("bus: negative MaxRetries")
	}
	return nil
}

// Bus is the router with the CQRS command and event buses and processors.
type Bus struct {
	cfg       Config
	logger    watermill.LoggerAdapter
	router    *message.Router
	events    *cqrs.EventBus
	commands  *cqrs.CommandBus
	eventProc *cqrs.EventProcessor
	cmdProc   *cqrs.CommandProcessor
	liveProc  *cqrs.EventProcessor
	salvage   *cqrs.CommandProcessor
	drainer   *Drainer
	handlers  int
}

// Topics lists every topic the bus publishes to.
func Topics() []string {
	names := []string{domain.NameImportAccepted, domain.NameValidateJob, domain.NameNumbersRecorded,
		domain.NameJobProjected, domain.NameImportProgressed, domain.NameImportCompleted,
		domain.NameLookupsRecorded}
	out := make([]string, 0, len(names)+1)
	for _, n := range names {
		out = append(out, Topic(n))
	}
	return append(out, PoisonTopic)
}

// New builds the bus.
func New(cfg Config) (*Bus, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug, // watermill's info is chatty
	})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.DrainTimeout}, logger)
	if err != nil {
		return nil, fmt.Errorf("bus: router: %w", err)
	}
	b := &Bus{cfg: cfg, logger: logger, router: router, drainer: &Drainer{}}
	if err := b.addMiddleware(); err != nil {
		return nil, err
	}
	marshaler := NewMarshaler()
	pub := cfg.Backend.Publisher()
	b.events, err = cqrs.NewEventBusWithConfig(pub, cqrs.EventBusConfig{
		GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) { return Topic(p.EventName), nil },
		OnPublish: func(p cqrs.OnEventSendParams) error {
			stampCorrelation(p.Message.Context(), p.Message)
			stampPartitionKey(p.Event, p.Message)
			return nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: event bus: %w", err)
	}
	b.commands, err = cqrs.NewCommandBusWithConfig(pub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(p cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return Topic(p.CommandName), nil
		},
		OnSend: func(p cqrs.CommandBusOnSendParams) error {
			stampCorrelation(p.Message.Context(), p.Message)
			stampPartitionKey(p.Command, p.Message)
			return nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: command bus: %w", err)
	}
	b.eventProc, err = cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) {
			return Topic(p.EventName), nil
		},
		SubscriberConstructor: func(p cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return cfg.Backend.Subscriber(p.HandlerName, b.batch(p.HandlerName))
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: event processor: %w", err)
	}
	b.liveProc, err = cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) {
			return Topic(p.EventName), nil
		},
		SubscriberConstructor: func(p cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return cfg.Backend.BroadcastSubscriber(p.HandlerName)
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: broadcast processor: %w", err)
	}
	b.salvage, err = cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return PoisonTopic, nil
		},
		SubscriberConstructor: func(p cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return cfg.Backend.Subscriber(p.HandlerName, b.batch(p.HandlerName))
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: poison processor: %w", err)
	}
	b.cmdProc, err = cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return Topic(p.CommandName), nil
		},
		SubscriberConstructor: func(p cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return cfg.Backend.Subscriber(p.HandlerName, b.batch(p.HandlerName))
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: command processor: %w", err)
	}
	return b, nil
}

func (b *Bus) batch(handler string) int {
	if n, ok := b.cfg.BatchSize[handler]; ok && n > 0 {
		return n
	}
	return DefaultBatchSize
}

// permanent reports errors that no retry can fix.
func permanent(err error) bool {
	return errors.Is(err, domain.ErrPermanent) || errors.Is(err, domain.ErrInvariant)
}

func (b *Bus) addMiddleware() error {
	poison, err := middleware.PoisonQueueWithFilter(b.cfg.Backend.Publisher(), PoisonTopic, func(err error) bool {
		return !errors.Is(err, ErrDraining) && !redeliver(err)
	})
	if err != nil {
		return fmt.Errorf("bus: poison queue: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      b.cfg.MaxRetries,
		InitialInterval: b.cfg.RetryInterval,
		MaxInterval:     5 * time.Second,
		Multiplier:      2,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !permanent(p.Err) && !errors.Is(p.Err, ErrDraining) && !errors.Is(p.Err, ErrTxLost)
		},
		Logger: b.logger,
	}
	// Outermost first.
	mw := []message.HandlerMiddleware{
		middleware.CorrelationID,
		logMessages(b.cfg.Logger),
		b.drainer.Middleware,
		Abandon{Logger: b.logger}.Middleware,
		poison,
		b.poisonTerminal,
		retry.Middleware,
		middleware.Recoverer,
	}
	if u, ok := b.cfg.Backend.(UnitOfWorker); ok {
		mw = append(mw, u.UnitOfWork())
	}
	b.router.AddMiddleware(append(mw, NewSavepoint().Middleware)...)
	return nil
}

// redeliver reports errors after which the message must be delivered again
// rather than poisoned: its transaction was lost (Abandon redelivers the
// batch), it clashed with a concurrent transaction (a new one will do), or
// the database could not be reached (the message waits for it, however
// long the outage: with Kafka the poison queue would still be reachable
// and take every message of the outage).
func redeliver(err error) bool {
	return errors.Is(err, ErrTxLost) || storage.IsConflict(err) || storage.IsUnavailable(err)
}

// poisonTerminal keeps the poison queue from feeding itself: a handler of
// the poison topic that still fails logs the message and moves on (the
// message stays in the poison log for `dlq` inspection).
func (b *Bus) poisonTerminal(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil && message.SubscribeTopicFromCtx(msg.Context()) == PoisonTopic && !errors.Is(err, ErrDraining) && !redeliver(err) {
			b.logger.Error("poison queue message could not be salvaged", err, watermill.LogFields{"message_uuid": msg.UUID})
			return nil, nil
		}
		return out, err
	}
}

// Backend is the pub/sub the bus runs on.
func (b *Bus) Backend() Backend { return b.cfg.Backend }

// Router is the Watermill router, for instrumentation before Run.
func (b *Bus) Router() *message.Router { return b.router }

// Events is the event bus.
func (b *Bus) Events() *cqrs.EventBus { return b.events }

// Commands is the command bus.
func (b *Bus) Commands() *cqrs.CommandBus { return b.commands }

// AddEventHandler registers an event handler; its name is its consumer group.
func (b *Bus) AddEventHandler(h cqrs.EventHandler) error {
	b.handlers++
	return b.eventProc.AddHandlers(h)
}

// AddBroadcastHandler registers an event handler that sees every event
// published after this process started, whatever other processes do: its
// name must be unique per process. Use it for in-process fan-out only.
func (b *Bus) AddBroadcastHandler(h cqrs.EventHandler) error {
	b.handlers++
	return b.liveProc.AddHandlers(h)
}

// AddPoisonCommandHandler registers a handler for commands of its type that
// landed in the poison queue; messages of other types there are skipped.
func (b *Bus) AddPoisonCommandHandler(h cqrs.CommandHandler) error {
	b.handlers++
	return b.salvage.AddHandlers(h)
}

// AddCommandHandler registers a command handler; its name is its consumer group.
func (b *Bus) AddCommandHandler(h cqrs.CommandHandler) error {
	b.handlers++
	return b.cmdProc.AddHandlers(h)
}

// InitTopics prepares every topic on the backend.
func (b *Bus) InitTopics(ctx context.Context) error {
	return b.cfg.Backend.InitTopics(ctx, Topics())
}

// Running is closed once every handler is running.
func (b *Bus) Running() chan struct{} { return b.router.Running() }

// IsRunning reports whether the router is running (or has no handlers).
func (b *Bus) IsRunning() bool {
	return b.handlers == 0 || (b.router.IsRunning() && !b.router.IsClosed())
}

// Run runs the handlers until ctx is done, then drains in-flight handlers
// and closes the router.
func (b *Bus) Run(ctx context.Context) error {
	r, ok := b.cfg.Backend.(Runner)
	if !ok {
		return b.runRouter(ctx)
	}
	// The backend's own work (the outbox forwarder) outlives the handlers,
	// so that what they publish while draining is forwarded too; if it
	// fails, the handlers stop.
	g, gctx := errgroup.WithContext(ctx)
	bctx, stopBackend := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackend()
	g.Go(func() error {
		defer stopBackend()
		return b.runRouter(gctx)
	})
	g.Go(func() error {
		err := r.Run(bctx)
		if bctx.Err() == nil {
			if err == nil {
				err = errors.New("returned early")
			}
			return fmt.Errorf("bus: backend stopped: %w", err)
		}
		return err
	})
	return g.Wait()
}

// runRouter runs the handlers until ctx is done, then drains them and
// closes the router.
func (b *Bus) runRouter(ctx context.Context) error {
	if b.handlers == 0 {
		<-ctx.Done()
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- b.router.Run(context.Background()) }()
	select {
	case err := <-errc:
		return fmt.Errorf("bus: router stopped: %w", err)
	case <-ctx.Done():
	}
	// Close only a router that runs its handlers. watermill's Close takes
	// the handlers' lock and waits for every added handler; if Run has not
	// started them yet it cannot (it needs that lock), and Close waits out
	// CloseTimeout and fails with "router close timeout" (a service
	// stopped within a moment of starting did, in tests).
	select {
	case <-b.router.Running():
	case err := <-errc:
		return fmt.Errorf("bus: router stopped: %w", err)
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), b.cfg.DrainTimeout)
	defer cancel()
	drainErr := b.drainer.Drain(drainCtx)
	closeErr := b.router.Close()
	<-errc
	return errors.Join(drainErr, closeErr)
}
