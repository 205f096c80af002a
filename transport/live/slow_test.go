package live

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestSlowConsumerIsDisconnected(t *testing.T) {
	e := newEnv(t, Config{
		CoalesceInterval: 2 * time.Millisecond,
		ClientQueue:      4,
		WriteWait:        500 * time.Millisecond,
	})
	p := e.pipeline(t, "imp1")
	p.padding = strings.Repeat("x", 128<<10) // big messages fill socket buffers fast

	slow := e.dial(t, "imp1", 0) // never reads until it has been dropped
	fast := e.dial(t, "imp1", 0)
	colFast := collect(t, fast)
	waitFor(t, "both registered", func() bool { return e.hub.Clients() == 2 })

	// Publish until the slow client is dropped; Publish must never block.
	var (
		latest     Update
		maxPublish time.Duration
	)
	deadline := time.Now().Add(20 * time.Second)
	for e.hub.Clients() == 2 {
		require.True(t, time.Now().Before(deadline), "slow client never dropped")
		latest = p.update(latest.Seq+1, false)
		start := time.Now()
		e.hub.Publish(latest)
		maxPublish = max(maxPublish, time.Since(start))
		time.Sleep(500 * time.Microsecond)
	}
	t.Logf("slow client dropped after %d updates; slowest Publish %v", latest.Seq, maxPublish)
	require.Less(t, maxPublish, 100*time.Millisecond, "Publish must not block on clients")

	// The fast client keeps receiving.
	for i := 0; i < 5; i++ {
		latest = p.progress(latest.Seq + 1)
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "fast client got the latest state", func() bool {
		m, ok := colFast.last()
		return ok && m.Seq == latest.Seq
	})
	require.Equal(t, 1, e.hub.Clients())

	// The slow client finds its connection closed once it reads again: with
	// 1013 "slow consumer" if the close frame got through, or abruptly (1006)
	// if the server's writer was stuck on the full socket and timed out.
	var err error
	for err == nil {
		_, err = readMsg(t, slow)
	}
	var ce *websocket.CloseError
	require.True(t, errors.As(err, &ce), "got %v", err)
	require.Contains(t, []int{websocket.CloseTryAgainLater, websocket.CloseAbnormalClosure}, ce.Code)
	t.Logf("slow client ended with: %v", err)

	final := p.complete(latest.Seq)
	msgs, err := colFast.wait(t)
	requireValidStream(t, msgs, err, true)
	require.Equal(t, final.Seq, msgs[len(msgs)-1].Seq)
}

// A client whose queue overflows while its connection is healthy (here: its
// writer has not started because the snapshot is still loading) is closed
// with 1013 "slow consumer".
func TestQueueOverflowSendsTryAgainLater(t *testing.T) {
	e := newEnv(t, Config{CoalesceInterval: 2 * time.Millisecond, ClientQueue: 1})
	p := e.pipeline(t, "imp1")
	loaded, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	e.srv.Config.Handler = slowSnapshotHandler(e, false, loaded, release)

	conns := make(chan *websocket.Conn, 1)
	go func() { conns <- e.dial(t, "imp1", 0) }()
	<-loaded
	for i := int64(1); e.hub.Clients() == 1; i++ {
		require.Less(t, i, int64(5000), "client never dropped")
		p.progress(i)
		time.Sleep(3 * time.Millisecond)
	}

	conn := <-conns
	msgs, err := readUntilClosed(t, conn)
	require.Empty(t, msgs)
	var ce *websocket.CloseError
	require.True(t, errors.As(err, &ce), "got %v", err)
	require.Equal(t, websocket.CloseTryAgainLater, ce.Code)
	require.Equal(t, "slow consumer", ce.Text)
}
