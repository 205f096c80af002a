package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// ErrTxLost marks an attempt after which the subscriber's transaction of the
// message can no longer be used: a serialization failure or deadlock
// (PostgreSQL keeps the stale snapshot, InnoDB has rolled the transaction
// back), a transaction that is already over, or a failed attempt that ran
// without a savepoint (see Savepoint). Retrying in it is futile; Abandon
// gives it up so that the batch is delivered again in a new one.
var ErrTxLost = errors.New("unit of work lost")

// Savepoint makes every retry of a message start from a clean unit of
// work. Without it a retried (or poisoned) message would commit the
// half-done writes of the failed attempt together with the next one.
//
// A message's first delivery runs without a savepoint: almost every
// attempt succeeds, and a savepoint is not free. SQLite copies every page
// the attempt changes into the savepoint's statement journal first (on the
// embedded backend that was ~10 % of the pipeline's CPU), PostgreSQL opens
// a subtransaction. If that attempt fails (or panics), its writes cannot be
// undone alone, so it fails with ErrTxLost: Abandon rolls the transaction
// back and the batch is delivered again. The message's UUID is remembered,
// and from then on each attempt runs inside a SAVEPOINT of the subscriber's
// transaction, rolled back when it fails, so that Retry and the poison
// queue work inside one transaction as they always did. The memory of
// failed messages is bounded (the oldest are forgotten first); a forgotten
// message costs one more delivery, never a lost or doubled write.
//
// Messages consumed without a subscriber transaction (Kafka: see
// UnitOfWork) pass through.
type Savepoint struct {
	failed *recentSet
}

// savepointMemory is how many failed messages a Savepoint remembers.
const savepointMemory = 4096

// NewSavepoint returns the middleware with an empty memory of failures.
func NewSavepoint() *Savepoint { return &Savepoint{failed: newRecentSet(savepointMemory)} }

// Middleware implements message.HandlerMiddleware.
func (s *Savepoint) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		tx, ok := watermillsql.TxFromContext(msg.Context())
		if !ok {
			return h(msg)
		}
		if !s.failed.contains(msg.UUID) {
			return s.firstAttempt(h, msg)
		}
		return inSavepoint(tx, h, msg)
	}
}

// firstAttempt runs the handler directly in the subscriber's transaction.
// A failure or panic gives the transaction up (ErrTxLost) and marks the
// message for attempts in savepoints.
func (s *Savepoint) firstAttempt(h message.HandlerFunc, msg *message.Message) (out []*message.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, panicError(r)
		}
		if err != nil {
			s.failed.add(msg.UUID)
			out, err = nil, fmt.Errorf("%w: first attempt (without a savepoint) failed, delivering again: %w", ErrTxLost, err)
		}
	}()
	return h(msg)
}

// inSavepoint runs one attempt inside SAVEPOINT handler_attempt and rolls
// back to it when the attempt fails.
func inSavepoint(tx *sql.Tx, h message.HandlerFunc, msg *message.Message) ([]*message.Message, error) {
	// Ending the savepoint must work even when the message context is
	// already canceled (ack deadline, closing subscriber).
	ctx := context.WithoutCancel(msg.Context())
	if _, err := tx.ExecContext(ctx, "SAVEPOINT handler_attempt"); err != nil {
		return nil, fmt.Errorf("%w: savepoint: %w", ErrTxLost, err)
	}
	out, err := recovered(h, msg)
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

// recovered runs h and turns a panic into an error, so that the attempt's
// writes are rolled back like those of any failed attempt (Recoverer, further
// out, would otherwise see the panic only after the savepoint was left
// open, and the next attempt would commit the writes).
func recovered(h message.HandlerFunc, msg *message.Message) (out []*message.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, panicError(r)
		}
	}()
	return h(msg)
}

func panicError(r any) error {
	return fmt.Errorf("panic: %v\n%s", r, debug.Stack())
}

// recentSet remembers up to capacity keys, forgetting the oldest first.
type recentSet struct {
	mu    sync.Mutex
	keys  map[string]struct{}
	order []string // ring buffer of keys in insertion order
	next  int
}

func newRecentSet(capacity int) *recentSet {
	return &recentSet{keys: make(map[string]struct{}, capacity), order: make([]string, capacity)}
}

func (r *recentSet) contains(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.keys[key]
	return ok
}

func (r *recentSet) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.keys[key]; ok {
		return
	}
	if old := r.order[r.next]; old != "" {
		delete(r.keys, old)
	}
	r.order[r.next] = key
	r.keys[key] = struct{}{}
	r.next = (r.next + 1) % len(r.order)
}
