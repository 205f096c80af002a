package live

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Hub fans out import updates from the message bus to WebSocket clients.
//
// Create it with NewHub, run its flush loop with Run, feed it with Publish and
// attach clients with Serve. All methods are safe for concurrent use.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	origins  originPolicy
	upgrader websocket.Upgrader

	mu      sync.Mutex
	topics  map[string]*topic // imports with at least one client
	dirty   []*topic          // topics with an unflushed progress update
	running bool              // Run has been called
	closed  bool              // Run's context is done; no new clients

	clients atomic.Int64
	active  sync.WaitGroup // Serve calls past registration
	batch   []flushItem    // flush scratch space, used only by Run
}

// topic is the per-import fan-out state. All fields are guarded by Hub.mu.
type topic struct {
	id      string
	clients map[*client]struct{}
	// latest is the newest update published while the topic existed; it is
	// valid if hasLatest. Connecting clients use it when it is newer than
	// their Snapshot, and Publish uses it to drop stale or duplicate updates.
	latest    Update
	hasLatest bool
	dirty     bool // latest is a progress update not yet flushed
}

// flushItem is one coalesced progress message being flushed.
type flushItem struct {
	t   *topic
	u   Update
	msg *websocket.PreparedMessage
}

// NewHub returns a Hub configured by cfg (zero fields get their defaults).
func NewHub(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg:     cfg,
		log:     cfg.Logger,
		origins: newOriginPolicy(cfg.AllowedOrigins),
		topics:  make(map[string]*topic),
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.WriteWait,
		// Write buffers are borrowed only while a message is written, so an
		// idle connection holds none.
		WriteBufferPool: &sync.Pool{},
		// Serve checks the origin itself, before the upgrade, to answer 403.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h
}

// errAlreadyRunning is returned by a second call to Run.
var errAlreadyRunning = errors.New("live: Hub.Run called more than once")

// Run runs the coalescing flush loop: every CoalesceInterval it sends the
// latest pending progress of each import to its clients. Progress is not
// delivered while Run is not running (completion is, as Publish sends it
// immediately).
//
// When ctx is done, Run closes every client with 1001 (going away), refuses
// new ones, waits for their connections to finish (each is bounded by
// WriteWait, and by the Snapshot honouring its context) and returns nil. A
// Hub can be run only once; further calls return an error.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errAlreadyRunning
	}
	h.running = true
	h.mu.Unlock()

	tick := time.NewTicker(h.cfg.CoalesceInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			h.shutdown()
			return nil
		case <-tick.C:
			h.flush()
		}
	}
}

// shutdown closes all clients with 1001 and waits for their Serve calls.
func (h *Hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	for _, t := range h.topics {
		for c := range t.clients {
			h.removeLocked(c)
			c.kick(websocket.CloseGoingAway, "server shutting down")
		}
	}
	h.dirty = nil
	h.mu.Unlock()
	h.active.Wait()
}

// flush sends the latest pending progress of every dirty topic. Messages are
// encoded outside the lock so Publish is never held up by encoding.
func (h *Hub) flush() {
	h.mu.Lock()
	batch := h.batch[:0]
	for _, t := range h.dirty {
		t.dirty = false
		batch = append(batch, flushItem{t: t, u: t.latest})
	}
	clear(h.dirty)
	h.dirty = h.dirty[:0]
	h.mu.Unlock()
	if len(batch) == 0 {
		return
	}

	for i := range batch {
		msg, err := prepare(typeProgress, batch[i].u)
		if err != nil {
			h.log.Error("live: cannot encode progress", "import_id", batch[i].u.ImportID, "err", err)
		}
		batch[i].msg = msg
	}

	h.mu.Lock()
	for _, it := range batch {
		// Skip topics that lost all clients meanwhile, and imports that
		// completed meanwhile (completion was already sent).
		if it.msg == nil || h.topics[it.t.id] != it.t || it.t.latest.Completed {
			continue
		}
		h.deliverLocked(it.t, queued{seq: it.u.Seq, msg: it.msg})
	}
	h.mu.Unlock()
	clear(batch) // drop references to topics and messages
	h.batch = batch[:0]
}

// Publish hands an update from the message bus to the hub. It never blocks on
// clients.
//
// Progress updates (Completed false) are coalesced: only the latest pending
// one per import is kept and sent by the next flush. Updates whose Seq is not
// above the newest one seen for the import (redeliveries, reordering) and
// updates after completion are dropped. A Completed update is never dropped by
// coalescing; it is sent to the import's clients immediately (once: a
// redelivered completion is ignored). Updates for imports nobody watches are
// dropped, since connecting clients load their state through Snapshot.
func (h *Hub) Publish(u Update) {
	if u.ImportID == "" {
		h.log.Warn("live: update without import id dropped", "seq", u.Seq)
		return
	}
	if !u.Completed {
		h.publishProgress(u)
		return
	}
	h.mu.Lock()
	t := h.topics[u.ImportID]
	watched := t != nil && !(t.hasLatest && t.latest.Completed)
	h.mu.Unlock()
	if !watched {
		return
	}

	msg, err := prepare(typeCompleted, u)
	if err != nil {
		h.log.Error("live: cannot encode completion", "import_id", u.ImportID, "err", err)
		if msg == nil {
			return
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	t = h.topics[u.ImportID]
	if t == nil || (t.hasLatest && t.latest.Completed) {
		return
	}
	if t.hasLatest && u.Seq <= t.latest.Seq {
		h.log.Warn("live: completion seq not above progress seq",
			"import_id", u.ImportID, "seq", u.Seq, "progress_seq", t.latest.Seq)
	}
	t.latest, t.hasLatest = u, true
	h.deliverLocked(t, queued{seq: u.Seq, completed: true, msg: msg})
}

func (h *Hub) publishProgress(u Update) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[u.ImportID]
	if t == nil || (t.hasLatest && (t.latest.Completed || u.Seq <= t.latest.Seq)) {
		return
	}
	t.latest, t.hasLatest = u, true
	if !t.dirty {
		t.dirty = true
		h.dirty = append(h.dirty, t)
	}
}

// deliverLocked enqueues q on every client of t without blocking; clients
// whose queue is full are disconnected as slow consumers.
func (h *Hub) deliverLocked(t *topic, q queued) {
	for c := range t.clients {
		select {
		case c.send <- q:
		default:
			h.log.Info("live: disconnecting slow consumer", "import_id", t.id, "remote", c.remote)
			h.removeLocked(c)
			c.kick(websocket.CloseTryAgainLater, "slow consumer")
		}
	}
}

// register subscribes c to importID. It returns false if the hub is closed.
func (h *Hub) register(importID string, c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	t := h.topics[importID]
	if t == nil {
		t = &topic{id: importID, clients: make(map[*client]struct{})}
		h.topics[importID] = t
	}
	t.clients[c] = struct{}{}
	c.topic = t
	h.active.Add(1)
	h.countLocked(1)
	return true
}

// unregister removes c if it is still subscribed.
func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(c)
}

// removeLocked unsubscribes c (if subscribed) and forgets its topic when it
// was the last client.
func (h *Hub) removeLocked(c *client) {
	t := c.topic
	if t == nil {
		return
	}
	c.topic = nil
	delete(t.clients, c)
	if len(t.clients) == 0 && h.topics[t.id] == t {
		delete(h.topics, t.id)
		// A dirty entry for t may remain in h.dirty; flush skips it.
	}
	h.countLocked(-1)
}

func (h *Hub) countLocked(delta int64) {
	n := h.clients.Add(delta)
	if h.cfg.OnClientsChanged != nil {
		h.cfg.OnClientsChanged(int(n))
	}
}

// latest returns the newest update seen for importID, if any.
func (h *Hub) latest(importID string) (Update, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[importID]; t != nil && t.hasLatest {
		return t.latest, true
	}
	return Update{}, false
}

// Clients returns the number of connected clients.
func (h *Hub) Clients() int {
	return int(h.clients.Load())
}
