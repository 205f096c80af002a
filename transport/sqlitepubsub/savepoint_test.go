package sqlitepubsub

import (
	"context"
	"errors"
	"fmt"

	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// savepointName names the savepoint savepointMiddleware opens. SQLite allows
// nesting savepoints of the same name; ROLLBACK TO and RELEASE act on the
// innermost one.
const savepointName = "watermill_handler"

// savepointMiddleware makes each delivery attempt's writes through the
// subscriber's transaction atomic: it opens a SAVEPOINT before the handler
// runs, rolls back to it when the handler returns an error or panics, and
// releases it when the handler succeeds. Messages without a subscriber
// transaction pass through.
func savepointMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (produced []*message.Message, err error) {
		tx, ok := watermillsql.TxFromContext(msg.Context())
		if !ok {
			return h(msg)
		}
		// The statements ending the savepoint must run even if the message
		// context is already canceled (AckDeadline, closing subscriber).
		ctx := context.WithoutCancel(msg.Context())
		if _, err := tx.ExecContext(msg.Context(), "SAVEPOINT "+savepointName); err != nil {
			return nil, fmt.Errorf("open savepoint for message %s: %w", msg.UUID, err)
		}

		panicked := true
		defer func() {
			if panicked || err != nil {
				_, rbErr := tx.ExecContext(ctx, "ROLLBACK TO "+savepointName)
				_, relErr := tx.ExecContext(ctx, "RELEASE "+savepointName)
				if !panicked {
					if rbErr != nil {
						err = errors.Join(err, fmt.Errorf("roll back savepoint for message %s: %w", msg.UUID, rbErr))
					}
					if relErr != nil {
						err = errors.Join(err, fmt.Errorf("release savepoint for message %s: %w", msg.UUID, relErr))
					}
				}
				return
			}
			if _, relErr := tx.ExecContext(ctx, "RELEASE "+savepointName); relErr != nil {
				produced, err = nil, fmt.Errorf("release savepoint for message %s: %w", msg.UUID, relErr)
			}
		}()

		produced, err = h(msg)
		panicked = false
		return produced, err
	}
}
