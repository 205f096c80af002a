package live

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// Serve upgrades the request to a WebSocket and streams the progress of
// importID until the import completes, the client goes away, or the hub shuts
// down. The caller must already have authenticated the request and checked
// that the import belongs to the caller's tenant. since is the seq of the last
// message the client received on a previous connection (?since=N), or 0.
//
// A disallowed Origin is answered with 403 and a shut-down hub with 503, both
// before the upgrade. The client is registered for updates before snap is
// called, so no update published meanwhile is lost; updates not newer than the
// snapshot are then skipped. If snap fails, the connection is closed with 1011.
// Serve blocks for the life of the connection; its goroutine is the
// connection's writer.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, importID string, since int64, snap Snapshot) {
	log := h.log.With("import_id", importID)
	if !h.origins.allow(r) {
		log.Info("live: cross-origin handshake refused", "origin", r.Header.Get("Origin"), "host", r.Host)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}

	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has already answered with an HTTP error.
		log.Debug("live: websocket upgrade failed", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := newClient(h, conn, log, cancel)
	if !h.register(importID, c) {
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"),
			time.Now().Add(h.cfg.WriteWait))
		_ = conn.Close()
		return
	}
	defer h.active.Done()
	go c.readLoop()
	defer func() {
		h.unregister(c)
		_ = conn.Close()
		<-c.readerEnd
	}()

	first, err := h.initialState(ctx, importID, snap)
	if err != nil {
		select {
		case <-c.quit: // kicked while loading: close as asked
			c.closeHandshake(c.quitCode, c.quitText)
		case <-c.readerEnd: // client gone
		default:
			log.Error("live: cannot load snapshot", "err", err)
			c.closeHandshake(websocket.CloseInternalServerErr, "snapshot unavailable")
		}
		return
	}
	c.writeLoop(first, max(since, 0))
}

// initialState loads the snapshot and returns it, or the newest update the
// hub has seen from the bus if that is newer (e.g. the database lags).
func (h *Hub) initialState(ctx context.Context, importID string, snap Snapshot) (Update, error) {
	if snap == nil {
		return Update{}, errors.New("live: nil Snapshot")
	}
	u, err := snap(ctx)
	if err != nil {
		return Update{}, fmt.Errorf("live: load snapshot of import %q: %w", importID, err)
	}
	u.ImportID = importID
	if cached, ok := h.latest(importID); ok {
		u = newer(u, cached)
	}
	return u, nil
}
