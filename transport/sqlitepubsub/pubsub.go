package sqlitepubsub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Subscriber defaults, see SubscriberConfig.
const (
	defaultPollInterval   = 100 * time.Millisecond
	defaultResendInterval = 100 * time.Millisecond
	defaultAckDeadline    = 5 * time.Second
	retryInterval         = time.Second
)

// NewPublisher returns a watermill-sql publisher inserting into the SQLite
// tables of this package.
//
// db may be a *sql.DB (each Publish is then its own transaction) or a
// *sql.Tx (the messages become visible when, and only if, the transaction
// commits). With a *sql.DB the topic's table is created on first use; with a
// *sql.Tx it is not, since DDL inside a caller's transaction is not the
// publisher's business: call InitializeTopic beforehand.
//
// All messages of one Publish call are inserted by one statement, in order;
// at most 10922 fit in one call.
func NewPublisher(db watermillsql.ContextExecutor, logger watermill.LoggerAdapter) (*watermillsql.Publisher, error) {
	pub, err := watermillsql.NewPublisher(db, watermillsql.PublisherConfig{
		SchemaAdapter:        SchemaAdapter{},
		AutoInitializeSchema: !isTx(db),
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("create sqlite publisher: %w", err)
	}
	return pub, nil
}

// isTx reports whether db is a transaction, the same way watermill-sql does.
func isTx(db watermillsql.ContextExecutor) bool {
	_, ok := db.(interface {
		Commit() error
		Rollback() error
	})
	return ok
}

// SubscriberConfig configures NewSubscriber. The zero value is usable
// (consumer group "").
type SubscriberConfig struct {
	// ConsumerGroup names the group this subscriber consumes for. All
	// subscribers of a group share the group's messages, each message going
	// to exactly one of them; every group receives every message.
	ConsumerGroup string

	// PollInterval is how long the subscriber waits before querying again
	// after it found no new message (or the database stayed locked). Every
	// query briefly takes the write lock. 0 means 100ms.
	PollInterval time.Duration

	// BatchSize is how many messages one transaction reads and delivers,
	// holding the write lock until all are acked. 0 means 100.
	BatchSize int

	// AckDeadline is how long a delivered message may stay unacknowledged
	// (including redeliveries after Nack) before the subscriber gives up on
	// it, commits the messages acked so far and reads it again. The write
	// lock is held meanwhile, so the default, 5s, stays below the 10s
	// busy_timeout other writers wait for it. 0 means 5s.
	AckDeadline time.Duration

	// ResendInterval is the pause before redelivering a nacked message,
	// still inside the same transaction (and under the write lock).
	// 0 means 100ms.
	ResendInterval time.Duration
}

// NewSubscriber returns a watermill-sql subscriber reading the SQLite tables
// of this package through db, which must be a pool opened by OpenDB: its
// transactions start with BEGIN IMMEDIATE, which exactly-once delivery
// depends on (see the package documentation). Other pools are refused.
// Subscribe creates the topic's tables if needed.
//
// The message context carries the delivering transaction:
// watermillsql.TxFromContext(msg.Context()). Writes made through it commit
// together with the message's acknowledgement.
func NewSubscriber(db *sql.DB, cfg SubscriberConfig, logger watermill.LoggerAdapter) (*watermillsql.Subscriber, error) {
	if db == nil {
		return nil, errors.New("create sqlite subscriber: db is nil")
	}
	if _, ok := db.Driver().(openDBDriver); !ok {
		return nil, fmt.Errorf("create sqlite subscriber: db must be opened with OpenDB (BEGIN IMMEDIATE transactions), got driver %T", db.Driver())
	}
	if cfg.PollInterval < 0 || cfg.AckDeadline < 0 || cfg.ResendInterval < 0 || cfg.BatchSize < 0 {
		return nil, fmt.Errorf("create sqlite subscriber: negative setting in %+v", cfg)
	}
	poll := orDefault(cfg.PollInterval, defaultPollInterval)
	ackDeadline := orDefault(cfg.AckDeadline, defaultAckDeadline)

	sub, err := watermillsql.NewSubscriber(db, watermillsql.SubscriberConfig{
		ConsumerGroup:    cfg.ConsumerGroup,
		AckDeadline:      &ackDeadline,
		PollInterval:     poll,
		ResendInterval:   orDefault(cfg.ResendInterval, defaultResendInterval),
		RetryInterval:    retryInterval,
		BackoffManager:   backoffManager{pollInterval: poll, retryInterval: retryInterval},
		SchemaAdapter:    SchemaAdapter{SubscribeBatchSize: cfg.BatchSize},
		OffsetsAdapter:   OffsetsAdapter{},
		InitializeSchema: true,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("create sqlite subscriber: %w", err)
	}
	return sub, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// backoffManager decides how long the subscriber waits before its next
// query. Unlike watermill-sql's default it knows SQLite's lock errors: a
// subscriber that could not get the write lock within busy_timeout (or lost
// a snapshot race) simply tries again after the poll interval, without
// logging an error.
type backoffManager struct {
	pollInterval  time.Duration
	retryInterval time.Duration
}

// HandleError implements watermillsql.BackoffManager.
func (b backoffManager) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	switch {
	case err == nil && noMsg:
		return b.pollInterval
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		// The subscription is ending; its loop notices by itself.
		return b.pollInterval
	case isBusy(err):
		logger.Debug("SQLite database busy, querying again later", watermill.LogFields{
			"err":       err.Error(),
			"wait_time": b.pollInterval,
		})
		return b.pollInterval
	default:
		logger.Error("Error querying for message", err, watermill.LogFields{
			"wait_time": b.retryInterval,
		})
		return b.retryInterval
	}
}

// isBusy reports whether err is SQLITE_BUSY or SQLITE_LOCKED (any extended
// code).
func isBusy(err error) bool {
	var serr *sqlite.Error
	if !errors.As(err, &serr) {
		return false
	}
	primary := serr.Code() & 0xff
	return primary == sqlite3.SQLITE_BUSY || primary == sqlite3.SQLITE_LOCKED
}

// InitializeTopic creates the messages and offsets tables of topic if they do
// not exist yet, in one transaction. Call it before publishing to topic
// inside a transaction (NewPublisher with a *sql.Tx does not create tables).
func InitializeTopic(ctx context.Context, db *sql.DB, topic string) (err error) {
	if err := validateTopic(topic); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("initialize topic %s: begin: %w", topic, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()

	queries := append(SchemaAdapter{}.SchemaInitializingQueries(topic), OffsetsAdapter{}.SchemaInitializingQueries(topic)...)
	for _, q := range queries {
		if _, err := tx.ExecContext(ctx, q.Query, q.Args...); err != nil {
			return fmt.Errorf("initialize topic %s: %w", topic, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("initialize topic %s: commit: %w", topic, err)
	}
	return nil
}

// validateTopic applies watermill-sql's topic name rule: only letters,
// digits and "-$:._", since topic names become table names.
func validateTopic(topic string) error {
	if topic == "" {
		return fmt.Errorf("topic name is empty: %w", watermillsql.ErrInvalidTopicName)
	}
	for _, r := range topic {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-', r == '$', r == ':', r == '.', r == '_':
		default:
			return fmt.Errorf("topic %q: %w", topic, watermillsql.ErrInvalidTopicName)
		}
	}
	return nil
}
