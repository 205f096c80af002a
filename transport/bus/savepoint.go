package bus

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// Savepoint runs each handler attempt inside a SAVEPOINT of the message's
// unit of work and rolls back to it when the attempt fails. Without it a
// retried (or poisoned) message would commit the half-done writes of the
// failed attempt together with the next one.
func Savepoint(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		tx, ok := storage.TxFrom(msg.Context())
		if !ok {
			return h(msg)
		}
		ctx := msg.Context()
		if _, err := tx.ExecContext(ctx, "SAVEPOINT handler_attempt"); err != nil {
			return nil, fmt.Errorf("savepoint: %w", err)
		}
		out, err := h(msg)
		if err != nil {
			if _, rbErr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT handler_attempt"); rbErr != nil {
				return nil, fmt.Errorf("%w (and rollback to savepoint failed: %w)", err, rbErr)
			}
		}
		if _, relErr := tx.ExecContext(ctx, "RELEASE SAVEPOINT handler_attempt"); relErr != nil && err == nil {
			return nil, fmt.Errorf("release savepoint: %w", relErr)
		}
		return out, err
	}
}
