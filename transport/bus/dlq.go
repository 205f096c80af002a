package bus

import (
	"context"
	"fmt"

	"github.com/phonepipe/phonepipe/transport/sqlitepubsub"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// DLQRequeuedTable records, on the embedded backend, the poison-queue rows
// that `phonepipe dlq requeue` put back on their topics. The poison topic
// is an append-only log (consumers keep offsets into it), so a requeued
// row stays and is marked here instead.
const DLQRequeuedTable = "dlq_requeued"

// InitDLQRequeued creates DLQRequeuedTable if it does not exist.
func InitDLQRequeued(ctx context.Context, db *storage.DB) error {
	_, err := db.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+DLQRequeuedTable+` (
	poison_offset INTEGER PRIMARY KEY,
	uuid TEXT NOT NULL,
	topic TEXT NOT NULL,
	requeued_at TEXT NOT NULL
)`)
	if err != nil {
		return fmt.Errorf("create %s: %w", DLQRequeuedTable, err)
	}
	return nil
}

// PoisonCounter is implemented by backends that know which poisoned
// messages were requeued: PoisonPending counts the others.
type PoisonCounter interface {
	PoisonPending(ctx context.Context) (int64, error)
}

// PoisonPending implements PoisonCounter: the poison-queue rows not
// requeued.
func (b SQLiteBackend) PoisonPending(ctx context.Context) (int64, error) {
	var n int64
	err := b.DB.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+sqlitepubsub.MessagesTable(PoisonTopic)+` p
		WHERE NOT EXISTS (SELECT 1 FROM `+DLQRequeuedTable+` r WHERE r.poison_offset = p."offset")`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("pending poison messages: %w", err)
	}
	return n, nil
}
