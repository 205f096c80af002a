package bus

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill"
	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Abandon gives up the subscriber's transaction of a message whose attempt
// failed with ErrTxLost: it rolls the transaction back and acknowledges the
// message. The acknowledgement reaches only the router; the subscriber's
// own acknowledgement (the offset write) then fails on the finished
// transaction, so nothing of the batch is committed and the whole batch is
// delivered again, in a new transaction with a fresh snapshot. Until the
// subscriber notices, the rest of the batch meets the same fate without
// running (its SAVEPOINT fails).
//
// This is how a SQL backend retries a message "from scratch" after a
// serialization failure or deadlock: watermill-sql would redeliver a nacked
// message inside the same, unusable, transaction. It never drops a
// message: it only ever acknowledges what cannot be committed.
type Abandon struct {
	Logger watermill.LoggerAdapter
}

// Middleware implements message.HandlerMiddleware.
func (a Abandon) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil || !errors.Is(err, ErrTxLost) {
			return out, err
		}
		tx, ok := watermillsql.TxFromContext(msg.Context())
		if !ok {
			return out, err
		}
		_ = tx.Rollback() // the transaction is lost either way
		a.Logger.Debug("Transaction given up, its batch will be delivered again", watermill.LogFields{
			"message_uuid": msg.UUID, "err": err.Error(),
		})
		return nil, nil
	}
}
