package live

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// queued is one broadcast message in a client's send queue.
type queued struct {
	seq       int64
	completed bool
	msg       *websocket.PreparedMessage
}

// client is one WebSocket connection watching one import. Its writer runs in
// the Serve goroutine; readLoop runs in a goroutine of its own.
type client struct {
	hub    *Hub
	conn   *websocket.Conn
	log    *slog.Logger
	remote string
	send   chan queued
	cancel context.CancelFunc // cancels the Snapshot context

	topic *topic // guarded by hub.mu; nil once unsubscribed

	quitOnce  sync.Once
	quit      chan struct{} // closed by kick
	quitCode  int           // written before quit is closed
	quitText  string
	readerEnd chan struct{} // closed when readLoop returns
}

func newClient(h *Hub, conn *websocket.Conn, log *slog.Logger, cancel context.CancelFunc) *client {
	return &client{
		hub:       h,
		conn:      conn,
		log:       log,
		remote:    conn.RemoteAddr().String(),
		send:      make(chan queued, h.cfg.ClientQueue),
		cancel:    cancel,
		quit:      make(chan struct{}),
		readerEnd: make(chan struct{}),
	}
}

// kick asks the writer to close the connection with code and text. It never
// blocks, so the hub can call it while holding its lock.
func (c *client) kick(code int, text string) {
	c.quitOnce.Do(func() {
		c.quitCode, c.quitText = code, text
		close(c.quit)
		c.cancel()
	})
}

// readLoop reads (and discards) client frames so that control frames are
// processed: pongs extend the read deadline, a close frame is answered, and
// frames over the read limit close the connection with 1009. It returns when
// the connection fails, the client closes it, or no frame arrives within
// PongWait.
func (c *client) readLoop() {
	defer close(c.readerEnd)
	defer c.cancel()
	wait := c.hub.cfg.PongWait
	c.conn.SetReadLimit(c.hub.cfg.ReadLimit)
	alive := func(string) error { return c.conn.SetReadDeadline(time.Now().Add(wait)) }
	if err := alive(""); err != nil {
		return
	}
	c.conn.SetPongHandler(alive)
	for {
		_, r, err := c.conn.NextReader()
		if err == nil {
			// Read the message through, so the read limit applies to the
			// whole message, however it is split into frames.
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			c.logReadEnd(err)
			return
		}
		if err := alive(""); err != nil {
			return
		}
	}
}

func (c *client) logReadEnd(err error) {
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		c.log.Info("live: client frame over read limit", "remote", c.remote)
	case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
		c.log.Debug("live: client closed connection", "remote", c.remote)
	default:
		c.log.Debug("live: client read ended", "remote", c.remote, "err", err)
	}
}

// writeLoop is the client's writer: it sends the snapshot, then queued
// updates and pings, until completion, a kick, or the end of the reader.
// since is the seq the client resumes after (0 for none).
func (c *client) writeLoop(first Update, since int64) {
	ping := time.NewTicker(c.hub.cfg.PingInterval)
	defer ping.Stop()

	if err := c.writeUpdate(typeSnapshot, first); err != nil {
		c.log.Debug("live: write snapshot", "remote", c.remote, "err", err)
		return
	}
	if first.Completed {
		if err := c.writeUpdate(typeCompleted, first); err == nil {
			c.closeHandshake(websocket.CloseNormalClosure, "import completed")
		}
		return
	}
	floor := max(first.Seq, since) // the client already has every state ≤ floor
	for {
		select {
		case q := <-c.send:
			if !q.completed && q.seq <= floor {
				continue
			}
			if err := c.writePrepared(q.msg); err != nil {
				c.log.Debug("live: write update", "remote", c.remote, "err", err)
				return
			}
			if q.completed {
				c.closeHandshake(websocket.CloseNormalClosure, "import completed")
				return
			}
			floor = q.seq
		case <-ping.C:
			deadline := time.Now().Add(c.hub.cfg.WriteWait)
			if err := c.conn.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
				c.log.Debug("live: write ping", "remote", c.remote, "err", err)
				return
			}
		case <-c.quit:
			c.closeHandshake(c.quitCode, c.quitText)
			return
		case <-c.readerEnd:
			return
		}
	}
}

func (c *client) writeUpdate(typ string, u Update) error {
	data, err := encode(typ, u)
	if err != nil {
		c.log.Error("live: cannot encode update", "err", err)
		if data == nil {
			return err
		}
	}
	return c.write(websocket.TextMessage, data)
}

func (c *client) write(messageType int, data []byte) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteWait)); err != nil {
		return err
	}
	return c.conn.WriteMessage(messageType, data)
}

func (c *client) writePrepared(pm *websocket.PreparedMessage) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteWait)); err != nil {
		return err
	}
	return c.conn.WritePreparedMessage(pm)
}

// maxCloseWait bounds how long the server waits for the client to answer its
// close frame.
const maxCloseWait = time.Second

// closeHandshake sends a close frame and waits (up to WriteWait, at most
// maxCloseWait) for the client to answer it, so that the client reads
// everything sent before the close frame before the TCP connection goes away.
func (c *client) closeHandshake(code int, text string) {
	msg := websocket.FormatCloseMessage(code, text)
	deadline := time.Now().Add(c.hub.cfg.WriteWait)
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
		c.log.Debug("live: write close", "remote", c.remote, "err", err)
		return
	}
	t := time.NewTimer(min(c.hub.cfg.WriteWait, maxCloseWait))
	defer t.Stop()
	select {
	case <-c.readerEnd:
	case <-t.C:
	}
}
