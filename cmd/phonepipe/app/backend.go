package app

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/kafkapubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// Backend names, as given to --backend.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
	BackendMySQL    = "mysql"
	BackendKafka    = "kafka"
)

// sqliteAckDeadline is long: the embedded subscriber holds the only write
// lock while a batch runs, and giving a batch up only makes it run again.
const sqliteAckDeadline = 10 * time.Minute

// openDB opens the database of the backend: the server for postgres and
// mysql; for kafka the PostgreSQL server when a DSN is given, else the
// embedded database in the data dir.
func (a *App) openDB(ctx context.Context) (*storage.DB, error) {
	switch {
	case a.cfg.Backend == BackendPostgres, a.cfg.Backend == BackendKafka && a.cfg.PostgresDSN != "":
		return storage.OpenPostgres(ctx, a.cfg.PostgresDSN)
	case a.cfg.Backend == BackendMySQL:
		return storage.OpenMySQL(ctx, a.cfg.MySQLDSN)
	default:
		return storage.OpenSQLite(a.cfg.DataDir)
	}
}

// newBackend returns the pub/sub of the backend over db. The returned
// close releases what it holds (the Kafka producer).
func (a *App) newBackend(db *storage.DB) (bus.Backend, func() error, error) {
	logger := watermill.NewSlogLoggerWithLevelMapping(a.logger, nil)
	nothing := func() error { return nil }
	sqlBackend := func() (bus.Backend, error) {
		if db.Dialect == storage.SQLite {
			return bus.SQLiteBackend{DB: db, PollInterval: a.cfg.PollInterval, AckDeadline: sqliteAckDeadline, Logger: logger}, nil
		}
		return bus.NewSQLBackend(bus.SQLBackend{DB: db, PollInterval: a.cfg.PollInterval, Logger: logger})
	}
	if a.cfg.Backend != BackendKafka {
		b, err := sqlBackend()
		return b, nothing, err
	}
	outbox, err := sqlBackend()
	if err != nil {
		return nil, nil, err
	}
	k, err := bus.NewKafkaBackend(bus.KafkaConfig{
		Kafka: kafkapubsub.Config{
			Brokers:        a.cfg.KafkaBrokers,
			Partitions:     int32(a.cfg.KafkaPartitions),
			SessionTimeout: a.cfg.KafkaSessionTimeout,
		},
		DB:     db,
		Outbox: outbox,
		Logger: logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kafka backend: %w", err)
	}
	return k, k.Close, nil
}
