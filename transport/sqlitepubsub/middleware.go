package sqlitepubsub

import (
	"context"
	"errors"
	"fmt"

	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// savepointName names the savepoint SavepointMiddleware opens. SQLite allows
// nesting savepoints of the same name; ROLLBACK TO and RELEASE act on the
// innermost one.
const savepointName = "watermill_handler"

// SavepointMiddleware is a Watermill handler middleware making each delivery
// attempt's writes through the subscriber's transaction
// (watermillsql.TxFromContext(msg.Context())) atomic: it opens a SAVEPOINT
// before the handler runs, rolls back to it when the handler returns an
// error or panics, and releases it when the handler succeeds.
//
// It closes a gap of watermill-sql: a nacked message is redelivered inside
// the same transaction, so without it the writes of failed attempts would be
// committed together with those of the attempt that finally succeeds. With
// it, a message's writes are committed if and only if the handler succeeded,
// the message was acked and the transaction committed; a failed attempt
// leaves nothing behind, and the redelivery starts from a clean state.
//
// Messages without a subscriber transaction in their context are passed
// through unchanged. If the savepoint cannot be opened the handler is not
// run and the error is returned (so the message is nacked).
func SavepointMiddleware(h message.HandlerFunc) message.HandlerFunc {
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
