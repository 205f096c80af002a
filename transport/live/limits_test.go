package live

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestOversizeClientFrameClosesWith1009(t *testing.T) {
	e := newEnv(t, Config{ReadLimit: 1024})
	e.pipeline(t, "imp1")
	conn := e.dial(t, "imp1", 0)
	require.Equal(t, typeSnapshot, mustRead(t, conn).Type)

	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 512))), "small frames are fine")
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 2048))))
	_, err := readMsg(t, conn)
	var ce *websocket.CloseError
	require.True(t, errors.As(err, &ce), "got %v", err)
	require.Equal(t, websocket.CloseMessageTooBig, ce.Code)
	waitFor(t, "client removed", func() bool { return e.hub.Clients() == 0 })
}

func TestPingKeepsAliveAndTimeoutDrops(t *testing.T) {
	const pongWait = 300 * time.Millisecond
	e := newEnv(t, Config{
		CoalesceInterval: 5 * time.Millisecond,
		PingInterval:     50 * time.Millisecond,
		PongWait:         pongWait,
	})
	p := e.pipeline(t, "imp1")

	alive := e.dial(t, "imp1", 0) // default ping handler answers with pongs
	colAlive := collect(t, alive)

	start := time.Now() // the server's read deadline starts after this
	dead := e.dial(t, "imp1", 0)
	pings := make(chan struct{}, 100)
	dead.SetPingHandler(func(string) error { // swallow pings, never pong
		select {
		case pings <- struct{}{}:
		default:
		}
		return nil
	})
	colDead := collect(t, dead)
	waitFor(t, "both registered", func() bool { return e.hub.Clients() == 2 })

	waitFor(t, "dead client dropped", func() bool { return e.hub.Clients() == 1 })
	took := time.Since(start)
	t.Logf("non-ponging client dropped after %v (PongWait %v)", took, pongWait)
	require.GreaterOrEqual(t, took, pongWait)
	require.NotEmpty(t, pings, "server must have pinged")
	msgs, err := colDead.wait(t)
	require.Error(t, err)
	require.Len(t, msgs, 1)

	// The ponging client outlives several PongWaits and still gets updates.
	time.Sleep(3 * pongWait)
	require.Equal(t, 1, e.hub.Clients())
	u := p.progress(1)
	waitFor(t, "alive client got progress", func() bool {
		m, ok := colAlive.last()
		return ok && m.Seq == u.Seq
	})
}
