package sqlitepubsub

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	watermillsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// receiver counts the messages a consumer group receives, acking each.
type receiver struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
}

func newReceiver() *receiver {
	return &receiver{counts: map[string]int{}}
}

// consume reads msgs until the channel closes.
func (r *receiver) consume(msgs <-chan *message.Message) {
	for msg := range msgs {
		r.mu.Lock()
		r.counts[msg.UUID]++
		r.total++
		r.mu.Unlock()
		msg.Ack()
	}
}

func (r *receiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// waitFor waits until n messages were received (or timeout), then a little
// longer so that duplicates or unexpected messages would show up too.
func (r *receiver) waitFor(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.received() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
}

// assertExactly checks that exactly the messages of want were received, each
// once.
func (r *receiver) assertExactly(t *testing.T, group string, want map[string]bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var missing, duplicated, unexpected int
	for id := range want {
		switch c := r.counts[id]; {
		case c == 0:
			missing++
		case c > 1:
			duplicated++
		}
	}
	for id := range r.counts {
		if !want[id] {
			unexpected++
		}
	}
	assert.Zero(t, missing, "group %s: committed messages never received", group)
	assert.Zero(t, duplicated, "group %s: messages received more than once", group)
	assert.Zero(t, unexpected, "group %s: received messages that were never committed", group)
	assert.Equal(t, len(want), r.total, "group %s: total deliveries", group)
}

// TestConcurrentTransactionalPublishingLosesNothing publishes from many
// goroutines, each in its own transactions (publisher built on the *sql.Tx),
// deliberately rolling some back, while two consumer groups read — one of
// them with two competing subscribers. Every committed message must reach
// each group exactly once, no rolled-back message may reach any.
func TestConcurrentTransactionalPublishingLosesNothing(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const topic = "orders.created-v1_test"
	require.NoError(t, InitializeTopic(ctx, db, topic))

	groupA, groupB := newReceiver(), newReceiver()
	for _, c := range []struct {
		group string
		r     *receiver
	}{{"a", groupA}, {"a", groupA}, {"b", groupB}} {
		sub := newTestSubscriber(t, db, SubscriberConfig{ConsumerGroup: c.group, BatchSize: 7})
		msgs, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err)
		go c.r.consume(msgs)
	}

	const (
		publishers = 8
		txsEach    = 20
	)
	var (
		mu         sync.Mutex
		committed  = map[string]bool{}
		rolledBack = map[string]bool{}
		wg         sync.WaitGroup
	)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(p), 42))
			for i := range txsEach {
				tx, err := db.BeginTx(ctx, nil)
				if !assert.NoError(t, err) {
					return
				}
				pub, err := NewPublisher(tx, testLogger())
				if !assert.NoError(t, err) {
					_ = tx.Rollback()
					return
				}
				var ids []string
				for range 1 + rnd.IntN(3) { // 1-3 Publish calls per transaction
					var batch []*message.Message
					for range 1 + rnd.IntN(4) { // of 1-4 messages each
						id := fmt.Sprintf("p%d-tx%d-%s", p, i, watermill.NewShortUUID())
						ids = append(ids, id)
						batch = append(batch, message.NewMessage(id, []byte(id)))
					}
					assert.NoError(t, pub.Publish(topic, batch...))
				}
				// Keep the transaction (and the write lock) open a little,
				// so that subscribers and other publishers queue up.
				time.Sleep(time.Duration(rnd.IntN(1500)) * time.Microsecond)

				rollback := rnd.IntN(4) == 0
				if rollback {
					assert.NoError(t, tx.Rollback())
				} else {
					assert.NoError(t, tx.Commit())
				}
				mu.Lock()
				for _, id := range ids {
					if rollback {
						rolledBack[id] = true
					} else {
						committed[id] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.NotEmpty(t, rolledBack)
	require.NotEmpty(t, committed)

	groupA.waitFor(t, len(committed), 60*time.Second)
	groupB.waitFor(t, len(committed), 60*time.Second)
	groupA.assertExactly(t, "a", committed)
	groupB.assertExactly(t, "b", committed)
	t.Logf("%d messages committed, %d rolled back", len(committed), len(rolledBack))
}

// TestOffsetsFollowCommitOrder begins transactions in one order and commits
// them in another, on a pool with plain deferred transactions (on the pool
// OpenDB returns, the second BEGIN would wait for the first transaction to
// end). A transaction's offsets are assigned by its first INSERT, which
// takes the write lock until the transaction ends, so offsets still follow
// commit order, and a subscriber that already acknowledged a later-begun
// transaction's message does not miss the messages committed after it. The
// rolled-back transaction leaves nothing behind. (Publishing in all four
// transactions before committing any, as watermill-sql's PostgreSQL test
// does, is impossible with SQLite: the second INSERT waits for the first
// transaction.)
func TestOffsetsFollowCommitOrder(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := OpenDB(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	deferred, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = deferred.Close() })

	ctx := context.Background()
	const topic = "commit-order"
	require.NoError(t, InitializeTopic(ctx, db, topic))

	r := newReceiver()
	sub := newTestSubscriber(t, db, SubscriberConfig{ConsumerGroup: "g"})
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	go r.consume(msgs)

	begin := func() *sql.Tx {
		tx, err := deferred.BeginTx(ctx, nil)
		require.NoError(t, err)
		return tx
	}
	publish := func(tx *sql.Tx, id string) error {
		pub, err := NewPublisher(tx, testLogger())
		require.NoError(t, err)
		return pub.Publish(topic, message.NewMessage(id, nil))
	}

	// Begun in the order 0, 1, rollback, 2, stale; committed as 2, 1, 0.
	tx0, tx1, txRollback, tx2, stale := begin(), begin(), begin(), begin(), begin()
	// stale reads before anything is published: its snapshot is fixed now.
	var n int
	require.NoError(t, stale.QueryRowContext(ctx, "SELECT count(*) FROM "+MessagesTable(topic)).Scan(&n))

	require.NoError(t, publish(tx2, "2"))
	require.NoError(t, tx2.Commit())
	time.Sleep(50 * time.Millisecond) // let the subscriber ack "2" first

	// A transaction whose snapshot predates "2" cannot insert behind it:
	// SQLite refuses the write (SQLITE_BUSY_SNAPSHOT) instead.
	require.Error(t, publish(stale, "stale"), "stale transaction must not write")
	require.NoError(t, stale.Rollback())

	require.NoError(t, publish(txRollback, "rollback"))
	require.NoError(t, txRollback.Rollback())

	require.NoError(t, publish(tx1, "1"))
	require.NoError(t, tx1.Commit())
	require.NoError(t, publish(tx0, "0"))
	require.NoError(t, tx0.Commit())

	r.waitFor(t, 3, 10*time.Second)
	r.assertExactly(t, "g", map[string]bool{"0": true, "1": true, "2": true})

	var offsets []string
	rows, err := db.QueryContext(ctx, `SELECT uuid FROM `+MessagesTable(topic)+` ORDER BY "offset"`)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		offsets = append(offsets, id)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"2", "1", "0"}, offsets, "offsets are in commit order")
}

// TestConsumerGroupSplitsMessages runs two subscribers of one consumer group
// while messages trickle in: together they receive every message once, and
// both get some. Handlers write through the delivering transaction, wrapped
// in savepointMiddleware; some attempts fail (nack). A message's writes must
// be committed if and only if it was acked: exactly one effect row per
// message, written by the attempt that succeeded.
func TestConsumerGroupSplitsMessages(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const topic = "work"
	require.NoError(t, InitializeTopic(ctx, db, topic))
	_, err := db.ExecContext(ctx, `CREATE TABLE effects (uuid TEXT NOT NULL, attempt INTEGER NOT NULL, worker INTEGER NOT NULL)`)
	require.NoError(t, err)

	const total = 150
	var (
		mu       sync.Mutex
		attempts = map[string]int{}
		acked    = map[string][]int{} // uuid -> workers that acked it
	)
	handler := func(worker int) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			tx, ok := watermillsql.TxFromContext(msg.Context())
			if !ok {
				return nil, fmt.Errorf("no transaction in message context")
			}
			mu.Lock()
			attempts[msg.UUID]++
			attempt := attempts[msg.UUID]
			mu.Unlock()
			if _, err := tx.ExecContext(msg.Context(), `INSERT INTO effects VALUES (?, ?, ?)`, msg.UUID, attempt, worker); err != nil {
				return nil, err
			}
			// Every fifth message fails on its first attempt, after writing.
			if msg.Metadata.Get("fail") == "yes" && attempt == 1 {
				return nil, fmt.Errorf("deliberate failure of %s", msg.UUID)
			}
			return nil, nil
		}
	}

	var consumers sync.WaitGroup
	for worker := range 2 {
		sub := newTestSubscriber(t, db, SubscriberConfig{ConsumerGroup: "workers", BatchSize: 3})
		msgs, err := sub.Subscribe(ctx, topic)
		require.NoError(t, err)
		h := savepointMiddleware(handler(worker))
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			for msg := range msgs {
				if _, err := h(msg); err != nil {
					msg.Nack()
					continue
				}
				mu.Lock()
				acked[msg.UUID] = append(acked[msg.UUID], worker)
				mu.Unlock()
				msg.Ack()
			}
		}()
	}

	pub, err := NewPublisher(db, testLogger())
	require.NoError(t, err)
	failing := map[string]bool{}
	for i := range total {
		msg := message.NewMessage(fmt.Sprintf("m%03d", i), []byte("job"))
		if i%5 == 0 {
			msg.Metadata.Set("fail", "yes")
			failing[msg.UUID] = true
		}
		require.NoError(t, pub.Publish(topic, msg))
		time.Sleep(time.Millisecond)
	}

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == total {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for duplicates to show up

	mu.Lock()
	defer mu.Unlock()
	perWorker := [2]int{}
	require.Len(t, acked, total, "every message acked")
	for id, workers := range acked {
		assert.Len(t, workers, 1, "message %s acked more than once: %v", id, workers)
		perWorker[workers[0]]++
	}
	t.Logf("messages per subscriber: %v", perWorker)
	assert.Positive(t, perWorker[0], "first subscriber got nothing")
	assert.Positive(t, perWorker[1], "second subscriber got nothing")

	for id := range failing {
		assert.Equal(t, 2, attempts[id], "nacked message %s is redelivered once", id)
	}

	rows, err := db.QueryContext(ctx, `SELECT uuid, count(*), max(attempt) FROM effects GROUP BY uuid`)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	effects := 0
	for rows.Next() {
		var id string
		var count, attempt int
		require.NoError(t, rows.Scan(&id, &count, &attempt))
		effects++
		assert.Equal(t, 1, count, "message %s: exactly one committed effect", id)
		assert.Equal(t, attempts[id], attempt, "message %s: the effect of the acked attempt", id)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, total, effects)
}

// TestNackWithoutSavepointKeepsWrites pins watermill-sql's behavior that
// savepointMiddleware exists for: a nacked message is redelivered in the
// same transaction, so without a savepoint the failed attempt's writes are
// committed along with the successful one's.
func TestNackWithoutSavepointKeepsWrites(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	ctx := context.Background()
	const topic = "nack"
	require.NoError(t, InitializeTopic(ctx, db, topic))
	_, err := db.ExecContext(ctx, `CREATE TABLE effects (attempt INTEGER NOT NULL)`)
	require.NoError(t, err)

	pub, err := NewPublisher(db, testLogger())
	require.NoError(t, err)
	require.NoError(t, pub.Publish(topic, message.NewMessage("only", nil)))

	sub := newTestSubscriber(t, db, SubscriberConfig{ConsumerGroup: "g"})
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	for attempt := 1; attempt <= 2; attempt++ {
		select {
		case msg := <-msgs:
			tx, ok := watermillsql.TxFromContext(msg.Context())
			require.True(t, ok)
			_, err := tx.ExecContext(msg.Context(), `INSERT INTO effects VALUES (?)`, attempt)
			require.NoError(t, err)
			if attempt == 1 {
				msg.Nack()
			} else {
				msg.Ack()
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("attempt %d not delivered", attempt)
		}
	}
	require.NoError(t, sub.Close()) // the transaction has committed when Close returns

	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM effects`).Scan(&n))
	assert.Equal(t, 2, n, "both attempts' writes committed (watermill-sql redelivers in the same transaction)")
}
