package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"golang.org/x/sync/errgroup"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/httpapi"
	"github.com/phonepipe/phonepipe/transport/live"
	"github.com/phonepipe/phonepipe/transport/metrics"
	"github.com/phonepipe/phonepipe/transport/storage"
	"github.com/phonepipe/phonepipe/transport/upload"
	"github.com/phonepipe/phonepipe/transport/web"
	"github.com/phonepipe/phonepipe/transport/webhooks"
)

// App is one running phonepipe process.
type App struct {
	cfg    Config
	logger *slog.Logger
	// closeBackend releases the pub/sub backend (the Kafka producer).
	closeBackend func() error
	db           *storage.DB
	bus          *bus.Bus
	server       *http.Server
	listener     net.Listener
	metrics      *metrics.Metrics
	hooks        *webhooks.Store
	hub          *live.Hub
	dispatch     *webhooks.Dispatcher
	lookups      *lookupStage
	// deadline fails what an import still misses at --import-deadline.
	deadline *handlers.DeadlineWatchdog
	// stall tells /readyz when the projector stops making progress.
	stall *stallWatch
}

// New opens the backend and wires the roles of cfg.
func New(ctx context.Context, cfg Config) (*App, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, logger: cfg.Logger, metrics: metrics.New()}
	if err := a.open(ctx); err != nil {
		return nil, err
	}
	if err := a.wire(); err != nil {
		_ = a.closeBackend()
		_ = a.db.Close()
		return nil, err
	}
	if err := a.listen(); err != nil {
		_ = a.closeBackend()
		_ = a.db.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) open(ctx context.Context) error {
	db, err := a.openDB(ctx)
	if err != nil {
		return err
	}
	a.db = db
	if err := os.MkdirAll(filepath.Join(a.cfg.DataDir, "tmp"), 0o750); err != nil {
		return errors.Join(fmt.Errorf("create upload spool dir: %w", err), db.Close())
	}
	a.hooks = webhooks.NewStore(db.Write, webhooks.Dialect(db.Dialect))
	// Processes that start together must not create the same tables at once.
	err = db.WithMigrationLock(ctx, func(ctx context.Context) error {
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		if err := projections.Migrate(ctx, db); err != nil {
			return err
		}
		if err := a.hooks.Migrate(ctx); err != nil {
			return err
		}
		return a.hooks.EnsureTenantSecrets(ctx, a.tenants(), a.cfg.WebhookSecret)
	})
	if err != nil {
		return errors.Join(err, db.Close())
	}
	backend, closeBackend, err := a.newBackend(db)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	a.closeBackend = closeBackend
	b, err := bus.New(bus.Config{
		Backend:    backend,
		Logger:     a.logger,
		MaxRetries: a.cfg.MaxRetries,
		BatchSize:  a.batchSizes(),
	})
	if err != nil {
		return errors.Join(err, closeBackend(), db.Close())
	}
	a.bus = b
	if err := b.InitTopics(ctx); err != nil {
		return errors.Join(err, closeBackend(), db.Close())
	}
	return nil
}

// batchSizes are the subscriber batches of the handlers that take more than
// one message at a time by default. A batch is one transaction: on the
// embedded backend it holds the only write lock until every message of the
// batch is handled, so there messages of jobs (500 rows each) come one per
// transaction and an upload (which jumps the queue of writers) waits for at
// most one job's writes. The server databases let writers run side by side,
// but a batch is still all the work a crash throws away, and on PostgreSQL
// no message published after it began is read by anyone until it ends: a
// projector batch of 50 jobs (25,000 rows) took longer than a service in a
// crash loop lived, and the import never got further (TestCrashLoop). So the
// handlers of jobs take two at a time there too; handlers of small messages
// keep the default batch, which saves round trips.
func (a *App) batchSizes() map[string]int {
	if a.cfg.Backend == BackendSQLite {
		return map[string]int{handlers.ValidatorName: 1, handlers.SplitterName: 1,
			handlers.ProjectorName: 1, handlers.StatsName: 2}
	}
	return map[string]int{handlers.ValidatorName: 2, handlers.SplitterName: 1,
		handlers.ProjectorName: 2, handlers.StatsName: 2}
}

func (a *App) wire() error {
	a.instrument()
	handled := storage.NewHandled(a.db)
	imports := projections.NewImports(a.db)
	events := a.bus.Events()
	lookupImports := projections.NewLookupImports(imports, a.db)
	var err error
	if a.lookups, err = a.wireLookups(lookupImports, events, handled); err != nil {
		return err
	}
	if err := a.wireDeadline(imports, events, handled); err != nil {
		return err
	}
	var errs []error
	if a.cfg.has(RoleSplit) {
		h := handlers.Splitter{Imports: imports, Commands: a.bus.Commands(), Dedupe: handled, JobSize: a.cfg.JobSize}
		errs = append(errs, a.bus.AddEventHandler(cqrs.NewEventHandler(h.HandlerName(), h.Handle)))
	}
	if a.cfg.has(RoleValidate) {
		h := handlers.Validator{Rows: storage.NewUploads(a.db), Streams: storage.NewStreamHeads(a.db), Events: events,
			Dedupe: handled, Enrich: a.cfg.enrich}
		if !a.cfg.noPrefetch {
			// Enrich the next job while this one holds the writer.
			h.Prefetch = handlers.NewPrefetcher(4)
		}
		errs = append(errs, a.bus.AddCommandHandler(cqrs.NewCommandHandler(h.HandlerName(), h.Handle)))
		s := handlers.Salvager{Rows: storage.NewUploads(a.db), Streams: storage.NewStreamHeads(a.db), Events: events, Dedupe: handled}
		errs = append(errs, a.bus.AddPoisonCommandHandler(cqrs.NewCommandHandler(s.HandlerName(), s.Handle)))
	}
	if a.cfg.has(RoleProject) {
		h := handlers.Projector{Numbers: projections.NewNumbers(a.db), Events: events, Dedupe: handled,
			Lookups: a.lookups.enqueuer()}
		errs = append(errs, a.bus.AddEventHandler(cqrs.NewEventHandler(h.HandlerName(), h.Handle)))
		if !a.cfg.withoutStats {
			st := handlers.Stats{Stats: projections.NewCarrierStats(a.db), Dedupe: handled}
			errs = append(errs, a.bus.AddEventHandler(cqrs.NewEventHandler(st.HandlerName(), st.Handle)))
		}
	}
	if a.cfg.has(RoleAggregate) {
		h := handlers.Aggregator{Imports: lookupImports, Events: events, Dedupe: handled, Observer: a.metrics}
		errs = append(errs, a.bus.AddEventHandler(cqrs.NewEventHandler(h.HandlerName(), h.Handle)))
	}
	if a.cfg.has(RoleNotify) {
		h := handlers.Notifier{Dedupe: handled, Outbox: webhooks.CompletionOutbox{
			Store: a.hooks, Secret: a.cfg.WebhookSecret, CorrelationID: bus.CorrelationIDFrom}}
		errs = append(errs, a.bus.AddEventHandler(cqrs.NewEventHandler(h.HandlerName(), h.Handle)))
		d, err := webhooks.NewDispatcher(a.hooks, webhooks.DispatcherConfig{
			Schedule: a.cfg.WebhookSchedule, AllowPrivate: a.cfg.WebhookAllowPrivate, Logger: a.logger,
			OnAttempt: a.metrics.WebhookAttempt})
		errs = append(errs, err)
		a.dispatch = d
	}
	if a.cfg.has(RoleAPI) {
		a.hub = live.NewHub(live.Config{AllowedOrigins: a.cfg.AllowedOrigins, Logger: a.logger,
			OnClientsChanged: a.metrics.WebSocketClients})
		feed := handlers.LiveFeed{Sink: hubSink{hub: a.hub}}
		// A consumer group of this process's own: every API process sees
		// every progress event, wherever the aggregator runs.
		group := "live-" + strings.ToLower(watermill.NewULID())
		errs = append(errs,
			a.bus.AddBroadcastHandler(cqrs.NewEventHandler(group+"-progress", feed.HandleProgressed)),
			a.bus.AddBroadcastHandler(cqrs.NewEventHandler(group+"-completed", feed.HandleCompleted)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("register handlers: %w", err)
	}
	return a.wireHTTP(imports, events)
}

func (a *App) wireHTTP(imports *projections.Imports, events handlers.EventPublisher) error {
	keys, err := httpapi.ParseAPIKeys(a.cfg.APIKeys)
	if err != nil {
		return fmt.Errorf("--api-keys: %w", err)
	}
	page := web.Handler()
	api, err := httpapi.New(httpapi.Config{
		DB:            a.db,
		Imports:       imports,
		Results:       projections.NewResults(a.db),
		Numbers:       projections.NewNumbers(a.db),
		Stats:         projections.NewCarrierStats(a.db),
		Uploads:       storage.NewUploads(a.db),
		Events:        events,
		APIKeys:       keys,
		Limits:        upload.Limits{MaxBytes: a.cfg.MaxUploadBytes, MaxRows: a.cfg.MaxRows},
		ImportRate:    httpapi.RateLimit{PerSecond: a.cfg.ImportRate, Burst: a.cfg.ImportBurst},
		TempDir:       filepath.Join(a.cfg.DataDir, "tmp"),
		DefaultRegion: a.cfg.DefaultRegion,
		Ready:         a.ready,
		Webhooks:      a.hooks,
		Live:          a.hub,
		OnAccepted:    a.metrics.ImportAccepted,
		LookupOptOut:  projections.NewLookupImports(imports, a.db).OptOut,
		Extra: []httpapi.Route{
			{Pattern: "GET /metrics", Handler: a.metrics.Handler()},
			{Pattern: web.PagePattern, Handler: page},
			{Pattern: web.AssetsPattern, Handler: page},
		},
		Logger: a.logger,
	})
	if err != nil {
		return err
	}
	a.server = &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return nil
}

func (a *App) listen() error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	a.listener = ln
	return nil
}

// instrument adds router metrics and the backend probes.
func (a *App) instrument() {
	a.metrics.InstrumentRouter(a.bus.Router())
	insp, ok := a.bus.Backend().(bus.Inspector)
	if !ok {
		return
	}
	if a.cfg.has(RoleProject) {
		topic := bus.Topic(domain.NameNumbersRecorded)
		a.stall = &stallWatch{name: handlers.ProjectorName, every: 10 * time.Second, after: 2 * time.Minute, now: time.Now,
			backlog: func(ctx context.Context) (int64, error) { return insp.Backlog(ctx, topic, handlers.ProjectorName) }}
	}
	consumers := map[string]string{
		handlers.SplitterName:   domain.NameImportAccepted,
		handlers.ValidatorName:  domain.NameValidateJob,
		handlers.ProjectorName:  domain.NameNumbersRecorded,
		handlers.StatsName:      domain.NameNumbersRecorded,
		handlers.AggregatorName: domain.NameJobProjected,
		handlers.NotifierName:   domain.NameImportCompleted,
	}
	for consumer, name := range consumers {
		topic := bus.Topic(name)
		a.metrics.AddGauge("consumer_lag_messages", "Messages a consumer (projection or stage) has not yet handled: its lag behind the head of its topic.",
			map[string]string{"consumer": consumer}, func(ctx context.Context) (float64, error) {
				n, err := insp.Backlog(ctx, topic, consumer)
				return float64(n), err
			})
	}
	poisoned := func(ctx context.Context) (int64, error) { return insp.TopicSize(ctx, bus.PoisonTopic) }
	if pc, ok := a.bus.Backend().(bus.PoisonCounter); ok {
		poisoned = pc.PoisonPending // requeued messages left out
	}
	a.metrics.AddGauge("poison_queue_messages", "Messages in the poison queue (on the embedded backend, less those requeued with `phonepipe dlq requeue`).", nil,
		func(ctx context.Context) (float64, error) {
			n, err := poisoned(ctx)
			return float64(n), err
		})
}

// tenants lists the tenants of --api-keys, or the default one.
func (a *App) tenants() []string {
	keys, err := httpapi.ParseAPIKeys(a.cfg.APIKeys)
	if err != nil || len(keys) == 0 {
		return []string{domain.DefaultTenant}
	}
	var out []string
	for _, k := range keys {
		if !slices.Contains(out, k.Tenant) {
			out = append(out, k.Tenant)
		}
	}
	return out
}

// hubSink feeds the live-progress hub from the bus.
type hubSink struct{ hub *live.Hub }

func (h hubSink) ImportChanged(s domain.ImportSummary) {
	if u, err := httpapi.LiveUpdate(s); err == nil {
		h.hub.Publish(u)
	}
}

// ready reports whether the database and the broker (if any) answer and
// the handlers run.
func (a *App) ready(ctx context.Context) error {
	if err := a.db.Ping(ctx); err != nil {
		return err
	}
	if p, ok := a.bus.Backend().(bus.Pinger); ok {
		if err := p.Ping(ctx); err != nil {
			return err
		}
	}
	if !a.bus.IsRunning() {
		return errors.New("message handlers are not running")
	}
	if a.stall != nil {
		return a.stall.check()
	}
	return nil
}

// URL is the base URL the API listens on.
func (a *App) URL() string { return "http://" + a.listener.Addr().String() }

// DataPath is where the embedded database lives, or which server holds
// the data.
func (a *App) DataPath() string {
	if a.db.Path != "" {
		return a.db.Path
	}
	return "the " + string(a.db.Dialect) + " server"
}

// Run serves until ctx is cancelled, then shuts down: the HTTP server stops
// taking requests, in-flight handlers finish, the database closes.
func (a *App) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.bus.Run(gctx) })
	// PostgreSQL only: its autovacuum analyzes too late for tables that
	// grow by the hundred thousand rows a minute.
	g.Go(func() error { return storage.Statistics{DB: a.db, Logger: a.logger}.Run(gctx) })
	if a.stall != nil {
		g.Go(func() error { return a.stall.Run(gctx) })
	}
	if a.dispatch != nil {
		g.Go(func() error { return a.dispatch.Run(gctx) })
	}
	a.lookups.run(gctx, g)
	if a.deadline != nil {
		g.Go(func() error { return a.deadline.Run(gctx) })
	}
	if a.hub != nil {
		g.Go(func() error { return a.hub.Run(gctx) })
	}
	if a.cfg.has(RoleAPI) {
		g.Go(func() error {
			if err := a.server.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			return a.server.Shutdown(shutdownCtx)
		})
	} else {
		a.serveOps(gctx, g)
	}
	err := g.Wait()
	return errors.Join(err, a.closeBackend(), a.db.Close())
}
