package app

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/eventlog"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// Catalog lists the projections of a phonepipe deployment, the replayable
// ones with the handlers that build them.
func Catalog() []projections.Projection {
	return projections.Catalog(projections.Handlers{Project: handlers.ProjectorName, Stats: handlers.StatsName,
		Lookups: handlers.LookupProjectorName})
}

// ReplayOptions selects what a replay rebuilds.
type ReplayOptions struct {
	// Projections names the projections to rebuild (see Catalog).
	Projections []string
	// All rebuilds every replayable projection.
	All bool
	// Progress, when set, is told how the replay advances.
	Progress func(projections.ReplayProgress)
	// Partitions is how many shadows the build fills in parallel; 0 means
	// one per two cores (the log is read and decoded on another
	// goroutine), at most 4.
	Partitions int
}

// maxReplayPartitions bounds the default number of partitions.
const maxReplayPartitions = 4

// Replay rebuilds projections of the deployment cfg describes (its
// backend, data dir or database, brokers) from the event log, in a shadow
// namespace, and swaps them in atomically; a running `serve` keeps
// answering from the old tables until then. It runs projection code only:
// no handler, no publisher, no notifier. See docs/REPLAY.md.
func Replay(ctx context.Context, cfg Config, opts ReplayOptions) (rep projections.ReplayReport, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return projections.ReplayReport{}, err
	}
	projs, err := projections.Select(Catalog(), opts.Projections, opts.All)
	if err != nil {
		return projections.ReplayReport{}, err
	}
	a := &App{cfg: cfg, logger: cfg.Logger}
	db, log, closeAll, err := a.openForReplay(ctx)
	if err != nil {
		return projections.ReplayReport{}, err
	}
	defer func() { err = errors.Join(err, closeAll()) }()
	n := opts.Partitions
	if n <= 0 {
		n = min(max(runtime.GOMAXPROCS(0)/2, 1), maxReplayPartitions)
	}
	shadows := make([]*storage.Shadow, 0, n)
	defer func() {
		for _, sh := range shadows {
			if dropErr := sh.Drop(context.WithoutCancel(ctx)); dropErr != nil {
				err = errors.Join(err, fmt.Errorf("replay: remove shadow %s: %w", sh.Name, dropErr))
			}
		}
	}()
	for range n {
		sh, err := storage.OpenShadow(ctx, db, storage.ShadowConfig{PostgresDSN: cfg.PostgresDSN, MySQLDSN: cfg.MySQLDSN})
		if err != nil {
			return projections.ReplayReport{}, fmt.Errorf("replay: %w", err)
		}
		shadows = append(shadows, sh)
	}
	r, err := projections.NewReplayer(projections.ReplayConfig{Live: db, Shadow: shadows[0], Partitions: shadows[1:],
		Log: log, Progress: opts.Progress, Logger: cfg.Logger})
	if err != nil {
		return projections.ReplayReport{}, err
	}
	return r.Run(ctx, projs)
}

// Checksums returns the checksum of every projection of the deployment cfg
// describes.
func Checksums(ctx context.Context, cfg Config) (sums []projections.Checksum, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, logger: cfg.Logger}
	db, err := a.openDB(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	if err := a.migrate(ctx, db); err != nil {
		return nil, err
	}
	return projections.Checksums(ctx, db, Catalog())
}

// openForReplay opens the database of the projections and the event log.
func (a *App) openForReplay(ctx context.Context) (*storage.DB, projections.EventLog, func() error, error) {
	db, err := a.openDB(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := a.migrate(ctx, db); err != nil {
		return nil, nil, nil, errors.Join(err, db.Close())
	}
	// The topics exist (empty) even where nothing was published yet.
	backend, closeBackend, err := a.newBackend(db)
	if err != nil {
		return nil, nil, nil, errors.Join(err, db.Close())
	}
	if err := backend.InitTopics(ctx, bus.Topics()); err != nil {
		return nil, nil, nil, errors.Join(err, closeBackend(), db.Close())
	}
	if a.cfg.Backend != BackendKafka {
		return db, eventlog.SQL{Dialect: db.Dialect}, func() error { return errors.Join(closeBackend(), db.Close()) }, nil
	}
	klog, err := eventlog.NewKafka(eventlog.KafkaConfig{Brokers: a.cfg.KafkaBrokers})
	if err != nil {
		return nil, nil, nil, errors.Join(err, closeBackend(), db.Close())
	}
	return db, klog, func() error { return errors.Join(klog.Close(), closeBackend(), db.Close()) }, nil
}

// migrate creates the tables of the pipeline state and the projections, so
// that a replay or a checksum finds them even on a database no recent
// `serve` has opened.
func (a *App) migrate(ctx context.Context, db *storage.DB) error {
	return db.WithMigrationLock(ctx, func(ctx context.Context) error {
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		return projections.Migrate(ctx, db)
	})
}
