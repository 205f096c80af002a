package live

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestStreamSnapshotProgressCompleted(t *testing.T) {
	var (
		mu     sync.Mutex
		counts []int
	)
	e := newEnv(t, Config{
		CoalesceInterval: 5 * time.Millisecond,
		OnClientsChanged: func(n int) { mu.Lock(); counts = append(counts, n); mu.Unlock() },
	})
	p := e.pipeline(t, "imp1")
	conn := e.dial(t, "imp1", 0)

	first := mustRead(t, conn)
	require.Equal(t, typeSnapshot, first.Type)
	require.Equal(t, int64(1), first.Seq)
	require.Equal(t, 1, e.hub.Clients())

	for rows := int64(1); rows <= 20; rows++ {
		u := p.progress(rows * 100)
		m := mustRead(t, conn) // wait for each one, so none is coalesced away
		require.Equal(t, typeProgress, m.Type)
		require.Equal(t, u.Seq, m.Seq)
		require.Equal(t, rows*100, m.summary(t).Rows)
	}
	final := p.complete(2000)
	rest, err := readUntilClosed(t, conn)
	msgs := append([]msg{first}, rest...)
	requireValidStream(t, msgs, err, true)
	require.Len(t, rest, 1)
	require.Equal(t, final.Seq, rest[0].Seq)
	require.JSONEq(t, string(final.Import), string(rest[0].Import))

	waitFor(t, "client removed", func() bool { return e.hub.Clients() == 0 })
	e.hub.mu.Lock()
	require.Empty(t, e.hub.topics, "topic must be forgotten with its last client")
	e.hub.mu.Unlock()
	mu.Lock()
	require.Equal(t, []int{1, 0}, counts)
	mu.Unlock()
}

func TestStreamClientConnectedAtCompletion(t *testing.T) {
	e := newEnv(t, Config{CoalesceInterval: time.Hour}) // progress never flushed
	p := e.pipeline(t, "imp1")
	conn := e.dial(t, "imp1", 0)
	require.Equal(t, typeSnapshot, mustRead(t, conn).Type)
	p.progress(1)
	p.progress(2)
	final := p.complete(3)
	p.hub.Publish(final) // a redelivered completion must not be sent twice

	msgs, err := readUntilClosed(t, conn)
	require.Len(t, msgs, 1, "pending progress is superseded by the completion, sent immediately")
	require.Equal(t, typeCompleted, msgs[0].Type)
	require.Equal(t, final.Seq, msgs[0].Seq)
	var ce *websocket.CloseError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, websocket.CloseNormalClosure, ce.Code)
}

func TestStaleAndDuplicateUpdatesDropped(t *testing.T) {
	e := newEnv(t, Config{CoalesceInterval: 5 * time.Millisecond})
	p := e.pipeline(t, "imp1")
	conn := e.dial(t, "imp1", 0)
	require.Equal(t, typeSnapshot, mustRead(t, conn).Type)

	u2 := p.progress(2)
	require.Equal(t, u2.Seq, mustRead(t, conn).Seq)
	e.hub.Publish(u2)                                                  // redelivery
	e.hub.Publish(Update{ImportID: "imp1", Seq: 1, Import: u2.Import}) // reordered
	u3 := p.progress(3)
	m := mustRead(t, conn)
	require.Equal(t, u3.Seq, m.Seq)
}

// A client is registered before its snapshot is loaded, so updates published
// while the snapshot loads are not lost; updates the snapshot already covers
// are skipped.
func TestSubscribeIsRaceFree(t *testing.T) {
	t.Run("update published during snapshot load is delivered", func(t *testing.T) {
		e := newEnv(t, Config{CoalesceInterval: 5 * time.Millisecond})
		p := e.pipeline(t, "imp1")
		loaded, release := make(chan struct{}), make(chan struct{})
		e.srv.Config.Handler = slowSnapshotHandler(e, true, loaded, release)

		conn := make(chan *websocket.Conn, 1)
		go func() { conn <- e.dial(t, "imp1", 0) }()
		<-loaded // snapshot (seq 1) read from a lagging replica, not yet sent
		u2 := p.progress(2)
		time.Sleep(20 * time.Millisecond) // let the flush queue it
		close(release)
		c := <-conn
		s := mustRead(t, c)
		require.Equal(t, typeSnapshot, s.Type)
		require.Equal(t, u2.Seq, s.Seq, "the hub's newer bus state beats the older snapshot")
		require.Equal(t, int64(2), s.summary(t).Rows)
		u3 := p.progress(3)
		m := mustRead(t, c)
		require.Equal(t, typeProgress, m.Type)
		require.Equal(t, u3.Seq, m.Seq, "queued seq 2 must not be sent again")
	})
	t.Run("queued update older than snapshot is skipped", func(t *testing.T) {
		e := newEnv(t, Config{CoalesceInterval: 5 * time.Millisecond})
		p := e.pipeline(t, "imp1")
		loaded, release := make(chan struct{}), make(chan struct{})
		e.srv.Config.Handler = slowSnapshotHandler(e, false, loaded, release)

		conn := make(chan *websocket.Conn, 1)
		go func() { conn <- e.dial(t, "imp1", 0) }()
		<-loaded
		p.progress(2)
		time.Sleep(20 * time.Millisecond) // seq 2 queued for the client
		p.update(3, false)                // stored; its bus message is still in flight
		close(release)
		c := <-conn
		first := mustRead(t, c)
		require.Equal(t, typeSnapshot, first.Type)
		require.Equal(t, int64(3), first.Seq)
		u4 := p.progress(4)
		m := mustRead(t, c)
		require.Equal(t, u4.Seq, m.Seq)
	})
}

// slowSnapshotHandler serves with a Snapshot that signals loaded and waits
// for release before returning. It reads the store before signalling if
// readEarly (a snapshot that is older than what the bus delivers meanwhile),
// else after release.
func slowSnapshotHandler(e *env, readEarly bool, loaded, release chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner := e.store.snapshot("imp1")
		e.hub.Serve(w, r, "imp1", 0, func(ctx context.Context) (Update, error) {
			var (
				u   Update
				err error
			)
			if readEarly {
				u, err = inner(ctx)
			}
			close(loaded)
			select {
			case <-release:
			case <-ctx.Done():
				return Update{}, ctx.Err()
			}
			if !readEarly {
				u, err = inner(ctx)
			}
			return u, err
		})
	})
}

func TestSnapshotErrorClosesWith1011(t *testing.T) {
	e := newEnv(t, Config{})
	e.store.err = errors.New("database down")
	conn := e.dial(t, "imp1", 0)
	_, err := readMsg(t, conn)
	var ce *websocket.CloseError
	require.True(t, errors.As(err, &ce), "got %v", err)
	require.Equal(t, websocket.CloseInternalServerErr, ce.Code)
	waitFor(t, "client removed", func() bool { return e.hub.Clients() == 0 })
}

func TestShutdownClosesClientsWithGoingAway(t *testing.T) {
	e := newEnv(t, Config{})
	e.pipeline(t, "imp1")
	conn := e.dial(t, "imp1", 0)
	require.Equal(t, typeSnapshot, mustRead(t, conn).Type)
	col := collect(t, conn)

	e.shutdown(t) // returns only once the connection is finished
	require.Zero(t, e.hub.Clients())
	msgs, err := col.wait(t)
	require.Empty(t, msgs)
	var ce *websocket.CloseError
	require.True(t, errors.As(err, &ce), "got %v", err)
	require.Equal(t, websocket.CloseGoingAway, ce.Code)

	_, resp, err := websocket.DefaultDialer.Dial(e.url("imp1", 0), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Error(t, e.hub.Run(context.Background()), "a hub runs once")
}
