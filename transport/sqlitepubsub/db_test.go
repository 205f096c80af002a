package sqlitepubsub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenDBConfiguresEveryConnection(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()

	// Hold several connections at once so that the pool must open new ones.
	var conns []*sql.Conn
	for range 4 {
		c, err := db.Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for i, c := range conns {
		var journal string
		var busy, fk, sync int
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
		assert.Equal(t, "wal", journal, "connection %d", i)
		assert.Equal(t, 10000, busy, "connection %d", i)
		assert.Equal(t, 1, fk, "connection %d", i)
		assert.Equal(t, 1, sync, "connection %d: synchronous=NORMAL", i)
		require.NoError(t, c.Close())
	}
}

// TestTransactionsBeginImmediate checks that a transaction holds the write
// lock from BEGIN on, before it wrote anything, while readers carry on.
func TestTransactionsBeginImmediate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := OpenDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ro, err := OpenReadOnlyDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ro.Close() })
	// A pool of its own, so that it waits for SQLite's lock rather than
	// for the in-process queue of db.
	other, err := OpenDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })

	ctx := context.Background()
	_, err = db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`)
	require.NoError(t, err)

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	var n int
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n))

	// Another writer cannot get in, although tx only read so far.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = other.ExecContext(short, `INSERT INTO t VALUES (1)`)
	require.Error(t, err, "write lock must be held from BEGIN")

	// Readers are not blocked.
	require.NoError(t, ro.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n))
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n))

	// Read-then-write inside the transaction never fails to upgrade.
	_, err = tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, n+1)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	_, err = other.ExecContext(ctx, `INSERT INTO t VALUES (2)`)
	require.NoError(t, err)
}

func TestOpenReadOnlyDB(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	_, err := OpenReadOnlyDB(filepath.Join(dir, "fresh.db"))
	require.Error(t, err, "a database not in WAL mode is refused")

	path := filepath.Join(dir, "test.db")
	db, err := OpenDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ro, err := OpenReadOnlyDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ro.Close() })

	ctx := context.Background()
	_, err = db.ExecContext(ctx, `CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7)`)
	require.NoError(t, err)

	var x int
	require.NoError(t, ro.QueryRowContext(ctx, `SELECT x FROM t`).Scan(&x))
	assert.Equal(t, 7, x)
	_, err = ro.ExecContext(ctx, `INSERT INTO t VALUES (8)`)
	require.Error(t, err, "read-only pool must refuse writes")

	// Transactions on the read-only pool are deferred: they do not wait
	// for a writer holding the lock.
	wtx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = wtx.Rollback() }()
	rtx, err := ro.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, rtx.QueryRowContext(ctx, `SELECT x FROM t`).Scan(&x))
	require.NoError(t, rtx.Commit())
}

func TestOpenDBRejectsBadPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "a?b.db", "file:x.db"} {
		_, err := OpenDB(p)
		assert.Error(t, err, "path %q", p)
	}
}

func TestSubscribeIsolationLevelAccepted(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	tx, err := db.BeginTx(context.Background(), &sql.TxOptions{Isolation: SchemaAdapter{}.SubscribeIsolationLevel()})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
}

func TestTableNames(t *testing.T) {
	t.Parallel()
	assert.Equal(t, `"watermill_orders.created-v1_x"`, MessagesTable("orders.created-v1_x"))
	assert.Equal(t, `"watermill_offsets_orders.created-v1_x"`, OffsetsTable("orders.created-v1_x"))
	assert.Equal(t, `"watermill_a""b"`, MessagesTable(`a"b`))
}

func TestInitializeTopic(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const topic = "a.b-c_d:e$f"
	require.NoError(t, InitializeTopic(ctx, db, topic))
	require.NoError(t, InitializeTopic(ctx, db, topic), "idempotent")

	for _, table := range []string{MessagesTable(topic), OffsetsTable(topic)} {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n), table)
	}

	err := InitializeTopic(ctx, db, "bad topic; DROP TABLE x")
	require.ErrorIs(t, err, watermillsql.ErrInvalidTopicName)
	require.ErrorIs(t, InitializeTopic(ctx, db, ""), watermillsql.ErrInvalidTopicName)
}

// TestRoundTrip publishes arbitrary bytes and metadata and checks what the
// subscriber returns and how it is stored.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const topic = "round.trip-1"

	payloads := [][]byte{
		{0x00, 0xff, 0xfe, 'x', 0x00},     // NUL bytes, invalid UTF-8
		[]byte(`{"json": true}`),          // JSON is just bytes too
		[]byte("plain text with ünïcode"), // valid UTF-8
		nil,                               // empty payload
	}
	pub, err := NewPublisher(db, testLogger())
	require.NoError(t, err)
	var sent []*message.Message
	for i, p := range payloads {
		msg := message.NewMessage(watermill.NewUUID(), p)
		msg.Metadata.Set("index", string(rune('0'+i)))
		msg.Metadata.Set("quote", `"'`)
		sent = append(sent, msg)
	}
	require.NoError(t, pub.Publish(topic, sent...))
	require.NoError(t, pub.Publish(topic), "publishing nothing is a no-op")

	sub := newTestSubscriber(t, db, SubscriberConfig{ConsumerGroup: "g"})
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	for i, want := range sent {
		select {
		case got := <-msgs:
			assert.Equal(t, want.UUID, got.UUID, "in order")
			assert.Equal(t, len(want.Payload), len(got.Payload), "message %d", i)
			if len(want.Payload) > 0 {
				assert.Equal(t, []byte(want.Payload), []byte(got.Payload), "message %d", i)
			}
			assert.Equal(t, want.Metadata, got.Metadata, "message %d", i)
			got.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not received", i)
		}
	}

	var payloadType, metadataType, index string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT typeof(payload), typeof(metadata), json_extract(metadata, '$.index')
		FROM `+MessagesTable(topic)+` ORDER BY "offset" LIMIT 1`).Scan(&payloadType, &metadataType, &index))
	assert.Equal(t, "blob", payloadType)
	assert.Equal(t, "text", metadataType)
	assert.Equal(t, "0", index)
}

func TestPublishTooManyInOneCall(t *testing.T) {
	t.Parallel()
	msgs := make(message.Messages, maxPublishBatch+1)
	for i := range msgs {
		msgs[i] = message.NewMessage("x", nil)
	}
	_, err := SchemaAdapter{}.InsertQuery("t", msgs)
	require.Error(t, err)
	q, err := SchemaAdapter{}.InsertQuery("t", msgs[:maxPublishBatch])
	require.NoError(t, err)
	assert.Len(t, q.Args, maxVariables-maxVariables%insertColumns)
}

func TestPublisherInTransaction(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const topic = "in-tx"
	require.NoError(t, InitializeTopic(ctx, db, topic))

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	pub, err := NewPublisher(tx, testLogger())
	require.NoError(t, err)
	require.NoError(t, pub.Publish(topic, message.NewMessage("a", nil)))
	require.NoError(t, tx.Commit())

	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM `+MessagesTable(topic)).Scan(&n))
	assert.Equal(t, 1, n)
}

func TestNewSubscriberValidates(t *testing.T) {
	t.Parallel()
	_, err := NewSubscriber(nil, SubscriberConfig{}, nil)
	require.Error(t, err)
	db := newTestDB(t)
	_, err = NewSubscriber(db, SubscriberConfig{PollInterval: -time.Second}, nil)
	require.Error(t, err)
	_, err = NewSubscriber(db, SubscriberConfig{BatchSize: -1}, nil)
	require.Error(t, err)
	sub, err := NewSubscriber(db, SubscriberConfig{}, nil)
	require.NoError(t, err)
	require.NoError(t, sub.Close())

	// Pools without BEGIN IMMEDIATE cannot guarantee exactly-once delivery.
	path := filepath.Join(t.TempDir(), "plain.db")
	plain, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = plain.Close() })
	_, err = NewSubscriber(plain, SubscriberConfig{}, nil)
	require.Error(t, err)
	rw, err := OpenDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rw.Close() })
	ro, err := OpenReadOnlyDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ro.Close() })
	_, err = NewSubscriber(ro, SubscriberConfig{}, nil)
	require.Error(t, err)
}

// TestWritersNotStarvedByDrainingSubscriber checks the pool's writer queue:
// while a subscriber drains a backlog — committing a batch and immediately
// beginning the next one — other writers (autocommit, transactions, DDL)
// still get their turn quickly instead of failing with SQLITE_BUSY after
// busy_timeout.
func TestWritersNotStarvedByDrainingSubscriber(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const topic = "backlog"
	require.NoError(t, InitializeTopic(ctx, db, topic))
	_, err := db.ExecContext(ctx, `CREATE TABLE other (x INTEGER)`)
	require.NoError(t, err)

	const backlog = 3000
	pub, err := NewPublisher(db, testLogger())
	require.NoError(t, err)
	batch := make([]*message.Message, 0, backlog)
	for range backlog {
		batch = append(batch, message.NewMessage(watermill.NewUUID(), []byte("x")))
	}
	require.NoError(t, pub.Publish(topic, batch...))

	sub := newTestSubscriber(t, db, SubscriberConfig{ConsumerGroup: "g", BatchSize: 20})
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	drained := make(chan struct{})
	go func() {
		n := 0
		for msg := range msgs {
			time.Sleep(100 * time.Microsecond) // some work per message
			msg.Ack()
			if n++; n == backlog {
				close(drained)
			}
		}
	}()

	var worst time.Duration
	writes := 0
	for done := false; !done; {
		select {
		case <-drained:
			done = true
		case <-time.After(20 * time.Millisecond):
		}
		start := time.Now()
		_, err := db.ExecContext(ctx, `INSERT INTO other VALUES (1)`)
		require.NoError(t, err)
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, `INSERT INTO other VALUES (2)`)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		// DDL takes the write lock too: a subscriber's first Subscribe
		// creates its topic's tables while the others drain.
		_, err = db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS other_%d (x INTEGER)`, writes))
		require.NoError(t, err)
		worst = max(worst, time.Since(start))
		writes++
	}
	t.Logf("%d writes while draining, slowest %s", writes, worst)
	assert.Greater(t, writes, 3)
	assert.Less(t, worst, 3*time.Second, "writers must not wait for the whole backlog")
}

func TestAutocommitOf(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `CREATE TABLE existing (x INTEGER)`)
	require.NoError(t, err)
	require.NoError(t, InitializeTopic(ctx, db, "orders-v1.created"))
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	for q, want := range map[string]autocommit{
		"INSERT INTO t VALUES (1)":                                                  runGated,
		"  \n\tinsert into t values (1)":                                            runGated,
		"-- comment\nUPDATE t SET x = 1":                                            runGated,
		"/* c */ DELETE FROM t":                                                     runGated,
		"REPLACE INTO t VALUES (1)":                                                 runGated,
		"SELECT 1":                                                                  runUngated,
		"CREATE TABLE IF NOT EXISTS missing (x)":                                    runGated,
		"create unique index if not exists missing_x on t (x)":                      runGated,
		"CREATE TABLE IF NOT EXISTS existing (x)":                                   skipNoOp,
		"CREATE TABLE IF NOT EXISTS \"EXISTING\" (x)":                               skipNoOp,
		"CREATE TABLE IF NOT EXISTS " + MessagesTable("orders-v1.created") + " (x)": skipNoOp,
		"CREATE TABLE IF NOT EXISTS " + MessagesTable("orders-v1.deleted") + " (x)": runGated,
		`CREATE TABLE IF NOT EXISTS "a""b" (x)`:                                     runGated,
		"CREATE INDEX IF NOT EXISTS existing ON t (x)":                              runGated, // a table, not an index: SQLite fails
		"CREATE TABLE IF NOT EXISTS main.existing (x)":                              runGated, // qualified: not recognized, so gated
		"CREATE TABLE IF NOT EXISTS existing (x); CREATE TABLE other (y)":           runGated, // two statements
		"CREATE TABLE IF NOT EXISTS existing (x);\n":                                skipNoOp,
		"CREATE TABLE t (x)":                                                        runGated,
		"DROP TABLE t":                                                              runGated,
		"ALTER TABLE t ADD COLUMN y":                                                runGated,
		"PRAGMA foreign_keys":                                                       runUngated,
		"-- only a comment":                                                         runUngated,
		"/* unterminated":                                                           runUngated,
		"":                                                                          runUngated,
		"INSERTED":                                                                  runUngated,
		"WITH x AS (SELECT 1) SELECT * FROM x":                                      runUngated,
	} {
		require.NoError(t, conn.Raw(func(dc any) error {
			assert.Equal(t, want, dc.(*gatedConn).autocommitOf(ctx, q), "%q", q)
			return nil
		}))
	}
}

func TestBackoffManager(t *testing.T) {
	t.Parallel()
	b := backoffManager{pollInterval: time.Millisecond, retryInterval: time.Second}
	l := testLogger()
	assert.Equal(t, time.Millisecond, b.HandleError(l, true, nil))
	assert.Equal(t, time.Duration(0), b.HandleError(l, false, nil))
	assert.Equal(t, time.Second, b.HandleError(l, false, errors.New("boom")))
	assert.Equal(t, time.Millisecond, b.HandleError(l, false, context.Canceled))

	// A genuine SQLITE_BUSY from the driver.
	path := filepath.Join(t.TempDir(), "busy.db")
	db, err := OpenDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	other, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	tx, err := db.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = other.Exec(`CREATE TABLE x (y)`)
	require.Error(t, err)
	assert.True(t, isBusy(err), "%v", err)
	assert.Equal(t, time.Millisecond, b.HandleError(l, false, err))
}

func TestSavepointRollsBackFailedAttempts(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`)
	require.NoError(t, err)

	write := func(x int, fail bool) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			tx, ok := watermillsql.TxFromContext(msg.Context())
			if !ok {
				return nil, errors.New("no transaction")
			}
			if _, err := tx.ExecContext(msg.Context(), `INSERT INTO t VALUES (?)`, x); err != nil {
				return nil, err
			}
			if fail {
				return nil, errors.New("fail")
			}
			return nil, nil
		}
	}

	const topic = "savepoint"
	pub, err := NewPublisher(db, testLogger())
	require.NoError(t, err)
	require.NoError(t, pub.Publish(topic, message.NewMessage("m", nil)))
	sub := newTestSubscriber(t, db, SubscriberConfig{ConsumerGroup: "g"})
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	var msg *message.Message
	select {
	case msg = <-msgs:
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}

	// Several attempts on the same delivery transaction.
	_, err = savepointMiddleware(write(1, true))(msg)
	require.Error(t, err)
	func() {
		defer func() { assert.NotNil(t, recover(), "panic propagates") }()
		_, _ = savepointMiddleware(func(msg *message.Message) ([]*message.Message, error) {
			_, _ = write(3, false)(msg)
			panic("handler panic")
		})(msg)
	}()
	_, err = savepointMiddleware(write(2, false))(msg)
	require.NoError(t, err)
	msg.Ack()
	require.NoError(t, sub.Close()) // the transaction has committed when Close returns

	var got []int
	rows, err := db.QueryContext(ctx, `SELECT x FROM t ORDER BY x`)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var x int
		require.NoError(t, rows.Scan(&x))
		got = append(got, x)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []int{2}, got, "only the successful attempt's write is kept")

	// Without a transaction the handler runs as is.
	called := false
	_, err = savepointMiddleware(func(*message.Message) ([]*message.Message, error) {
		called = true
		return nil, nil
	})(message.NewMessage("p", nil))
	require.NoError(t, err)
	assert.True(t, called)
}

// TestWriteGateReleased checks that every way a transaction can end gives
// the pool's writer queue back: later writes must not wait for it.
func TestWriteGateReleased(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`)
	require.NoError(t, err)

	quickWrite := func(what string) {
		t.Helper()
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := db.ExecContext(short, `INSERT INTO t VALUES (1)`)
		require.NoError(t, err, "write after %s", what)
	}

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	quickWrite("commit")

	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	quickWrite("rollback")

	txCtx, cancel := context.WithCancel(ctx)
	tx, err = db.BeginTx(txCtx, nil)
	require.NoError(t, err)
	cancel() // database/sql rolls the transaction back by itself
	require.Eventually(t, func() bool { return errors.Is(tx.Commit(), sql.ErrTxDone) }, time.Second, 10*time.Millisecond)
	quickWrite("canceled context")

	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	tx, err = conn.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO t VALUES (2)`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.NoError(t, conn.Close())
	quickWrite("dedicated connection")

	// Read-only transactions never take the gate, so they do not block
	// writers even while open.
	ro, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	quickWrite("open read-only transaction")
	require.NoError(t, ro.Rollback())

	// While a write transaction is open, another writer of the pool waits
	// for it (in order) instead of failing.
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, `INSERT INTO t VALUES (3)`)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write did not wait for the open transaction: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, tx.Commit())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("write still waiting after the transaction ended")
	}
}

// TestCreateIfNotExistsOfExistingNeedsNoWriteLock checks that a CREATE …
// IF NOT EXISTS of an existing table succeeds at once while a writer holds
// the write lock, also on connections whose compiled statement or schema
// predates the table: SQLite would take the write lock before finding the
// statement has nothing to do, and, asked for outside the gate while the
// gate's writers follow each other, that lock is not granted within
// busy_timeout (a subscriber failed with SQLITE_BUSY at start-up that way).
// Run without the skip, the creating connection (its cached statement was
// compiled to create the table) waits for the lock and fails.
func TestCreateIfNotExistsOfExistingNeedsNoWriteLock(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const create = `CREATE TABLE IF NOT EXISTS late (x INTEGER)`
	stale, err := db.Conn(ctx) // reads the schema before the table exists
	require.NoError(t, err)
	defer stale.Close()
	var n int
	require.NoError(t, stale.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n))
	creator, err := db.Conn(ctx) // creates the table, keeping the statement cached
	require.NoError(t, err)
	defer creator.Close()
	_, err = creator.ExecContext(ctx, create)
	require.NoError(t, err)

	writer, err := db.BeginTx(ctx, nil) // holds the gate and the write lock
	require.NoError(t, err)
	defer func() { _ = writer.Rollback() }()
	_, err = writer.ExecContext(ctx, `INSERT INTO late VALUES (1)`)
	require.NoError(t, err)

	for name, conn := range map[string]*sql.Conn{"the creating connection": creator, "a connection with an older schema": stale} {
		// Far below busy_timeout (10 s): the statement must not wait for the lock.
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := conn.ExecContext(short, create)
		cancel()
		assert.NoError(t, err, name)
	}
}
