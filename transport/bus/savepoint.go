package bus

import (
	"context"
	"errors"
	"fmt"

	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// ErrTxLost marks an attempt after which the subscriber's transaction of the
// message can no longer be used: a serialization failure or deadlock
// (PostgreSQL keeps the stale snapshot, InnoDB has rolled the transaction
// back), or a transaction that is already over. Retrying in it is futile;
// Abandon gives it up so that the batch is delivered again in a new one.
var ErrTxLost = errors.New("unit of work lost")

// Savepoint runs each handler attempt inside a SAVEPOINT of the subscriber's
// transaction and rolls back to it when the attempt fails. Without it a
// retried (or poisoned) message would commit the half-done writes of the
// failed attempt together with the next one. Messages consumed without a
// subscriber transaction (Kafka: see UnitOfWork) pass through.
func Savepoint(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		tx, ok := watermillsql.TxFromContext(msg.Context())
		if !ok {
			return h(msg)
		}
		// Ending the savepoint must work even when the message context is
		// already canceled (ack deadline, closing subscriber).
		ctx := context.WithoutCancel(msg.Context())
		if _, err := tx.ExecContext(ctx, "SAVEPOINT handler_attempt"); err != nil {
			return nil, fmt.Errorf("%w: savepoint: %w", ErrTxLost, err)
		}
		out, err := h(msg)
		if err != nil && storage.IsConflict(err) {
			return nil, fmt.Errorf("%w: %w", ErrTxLost, err)
		}
		if err != nil {
			if _, rbErr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT handler_attempt"); rbErr != nil {
				return nil, fmt.Errorf("%w: %w (and rollback to savepoint failed: %w)", ErrTxLost, err, rbErr)
			}
		}
		if _, relErr := tx.ExecContext(ctx, "RELEASE SAVEPOINT handler_attempt"); relErr != nil && err == nil {
			return nil, fmt.Errorf("%w: release savepoint: %w", ErrTxLost, relErr)
		}
		return out, err
	}
}
