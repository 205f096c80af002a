package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// UnitOfWork gives each handler attempt a transaction on DB when the
// message brings none (a broker such as Kafka is not the database): the
// handler's writes and the messages it publishes (into the outbox) commit
// together, and only when it succeeds; then the message is acknowledged. A
// failed attempt rolls back, so a retry starts from a clean state and a
// fresh snapshot. Messages that carry a transaction (SQL subscribers) pass
// through.
type UnitOfWork struct {
	DB *storage.DB
}

// Middleware implements message.HandlerMiddleware.
func (u UnitOfWork) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (out []*message.Message, err error) {
		orig := msg.Context()
		if _, ok := storage.TxFrom(orig); ok {
			return h(msg)
		}
		tx, err := u.DB.Write.BeginTx(orig, nil)
		if err != nil {
			return nil, fmt.Errorf("begin unit of work: %w", err)
		}
		msg.SetContext(storage.WithTx(orig, tx))
		// The message outlives the attempt (poison queue, redelivery):
		// it must not keep pointing at a finished transaction.
		defer msg.SetContext(orig)
		defer func() {
			if p := recover(); p != nil {
				_ = tx.Rollback()
				panic(p)
			}
		}()
		out, err = h(msg)
		if err != nil {
			return nil, errors.Join(err, ignoreDone(tx.Rollback()))
		}
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("commit unit of work: %w", err)
		}
		return out, nil
	}
}

// ignoreDone drops the error of rolling back a transaction that is over.
func ignoreDone(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return fmt.Errorf("roll back unit of work: %w", err)
}
