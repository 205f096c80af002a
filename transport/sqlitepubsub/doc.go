// Package sqlitepubsub is the embedded SQLite backend for Watermill.
//
// It plugs SQLite (modernc.org/sqlite, pure Go, driver name "sqlite") into
// watermill-sql (github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql) by
// implementing its SchemaAdapter and OffsetsAdapter interfaces, and provides
// constructors for a correctly configured database pool, publisher and
// subscriber.
//
// # Storage layout
//
// Every topic has two tables (see MessagesTable and OffsetsTable):
//
//	"watermill_<topic>"          "offset" INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT,
//	                             created_at TEXT, payload BLOB, metadata TEXT (JSON)
//	"watermill_offsets_<topic>"  consumer_group TEXT PRIMARY KEY, offset_acked INTEGER
//
// A consumer group's position is the highest offset it acknowledged; it reads
// the messages with a greater offset, in offset order. A group without a row
// starts at 0, so a new group receives every message ever published.
// Payloads are stored as opaque bytes; metadata is stored as JSON text.
//
// # Why no message is ever lost or delivered twice
//
// SQLite has no SELECT ... FOR UPDATE and no row locks: there is exactly one
// writer at a time for the whole database file. This package relies on that
// instead of fighting it. OpenDB configures the pool so that every
// transaction starts with BEGIN IMMEDIATE, which takes the database's write
// lock up front (waiting up to busy_timeout for it) instead of upgrading a
// read transaction later.
//
// Exactly-once delivery within a consumer group: the subscriber's
// transaction reads the group's acknowledged offset, selects the next batch,
// delivers the messages one by one, waits for each Ack, writes the new offset
// and commits — all while holding the write lock. A second subscriber of the
// same group (in this process or another one) cannot even begin its
// transaction until the first one has committed, so it then reads the
// already advanced offset and never sees the same messages. Different
// consumer groups have different rows in the offsets table, so each group
// receives every message. The guarantee depends on BEGIN IMMEDIATE (with
// deferred transactions two subscribers could read the same offset, and an
// ack could fail after delivery), so NewSubscriber refuses pools not opened
// by OpenDB.
//
// No message is skipped: a message's offset is assigned when it is inserted
// (AUTOINCREMENT, so offsets are never reused), and an inserting transaction
// holds the write lock from the INSERT until it commits or rolls back.
// Another transaction can therefore only insert after it finished, and gets a
// greater offset. Hence commit order equals offset order: once a transaction
// can see a message with offset N, every message with a smaller offset that
// will ever exist is already committed and visible too. A subscriber that
// acknowledges offset N can never be overtaken by a message that becomes
// visible "behind" N later — the problem PostgreSQL adapters solve with
// transaction-id bookkeeping cannot occur. A rolled-back publishing
// transaction leaves no rows at all, so nothing of it is ever delivered.
//
// # Consequences for users (read this)
//
// The subscriber holds the database's write lock from the moment it reads a
// batch (up to SubscriberConfig.BatchSize messages) until the last message
// of the batch is acked — including the time the message waits to be
// received from the channel, the handler runs, and the ResendInterval
// pauses after a Nack. While it does:
//
//   - Handlers must write through the delivering transaction,
//     watermillsql.TxFromContext(msg.Context()), and publish follow-up
//     messages through a publisher built on that transaction
//     (NewPublisher(tx, logger)). A write through any other connection —
//     including a Watermill router publishing a handler's returned messages
//     with a publisher built on the *sql.DB — waits for the lock the
//     subscriber holds and fails after busy_timeout (10s; up to twice that
//     with the in-process queue of OpenDB in front of it).
//   - Other writers (HTTP handlers, other subscribers, other topics) wait
//     for the batch to finish; OpenDB queues them in arrival order so that
//     none is starved. Keep handlers short, or lower BatchSize to release
//     the lock more often. Readers are never blocked (WAL); use
//     OpenReadOnlyDB for queries.
//   - A subscription whose channel nobody reads blocks all writers until its
//     AckDeadline (default 5s) expires.
//
// Watermill-sql redelivers a nacked message inside the same transaction, so
// a Nack by itself does not undo the handler's writes (see
// https://github.com/ThreeDotsLabs/watermill/issues/224). Run each handler
// attempt inside a SAVEPOINT of the delivering transaction and roll back to
// it when the attempt fails (transport/bus does); a message's writes are
// then committed if and only if it was acked. One gap remains: if a message
// ends up not acknowledged because the subscriber was closed, its context
// was canceled or the AckDeadline passed while its handler was running,
// watermill-sql still commits the transaction, including whatever that
// handler had written so far, and delivers the message again later.
// Handlers should be idempotent, and AckDeadline well above their run time.
package sqlitepubsub
