package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// summary is the import summary used by the tests (opaque to the hub).
type summary struct {
	ID      string `json:"id"`
	Rows    int64  `json:"rows_done"`
	State   string `json:"state"`
	Padding string `json:"padding,omitempty"`
}

// store plays the database: the pipeline writes the state here before
// publishing it, and Snapshot reads it.
type store struct {
	mu    sync.Mutex
	state map[string]Update
	err   error
}

func newStore() *store { return &store{state: make(map[string]Update)} }

func (s *store) set(u Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state[u.ImportID] = u
}

func (s *store) snapshot(id string) Snapshot {
	return func(ctx context.Context) (Update, error) {
		if err := ctx.Err(); err != nil {
			return Update{}, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil {
			return Update{}, s.err
		}
		u, ok := s.state[id]
		if !ok {
			return Update{}, fmt.Errorf("import %q not found", id)
		}
		return u, nil
	}
}

// pipeline simulates an import worker: each state change gets the next
// version, is stored, then published on the "bus".
type pipeline struct {
	t       testing.TB
	hub     *Hub
	store   *store
	id      string
	seq     int64
	padding string
}

func (p *pipeline) update(rows int64, completed bool) Update {
	p.seq++
	state := "running"
	if completed {
		state = "completed"
	}
	data, err := json.Marshal(summary{ID: p.id, Rows: rows, State: state, Padding: p.padding})
	require.NoError(p.t, err)
	u := Update{ImportID: p.id, Seq: p.seq, Completed: completed, Import: data}
	p.store.set(u)
	return u
}

func (p *pipeline) progress(rows int64) Update {
	u := p.update(rows, false)
	p.hub.Publish(u)
	return u
}

func (p *pipeline) complete(rows int64) Update {
	u := p.update(rows, true)
	p.hub.Publish(u)
	return u
}

// env is a running hub behind an httptest server.
type env struct {
	hub   *Hub
	store *store
	srv   *httptest.Server
	stop  context.CancelFunc
	done  chan error
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	h := NewHub(cfg)
	e := &env{hub: h, store: newStore(), done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/imports/{id}/progress", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var since int64
		if s := r.URL.Query().Get("since"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				http.Error(w, "bad since", http.StatusBadRequest)
				return
			}
			since = n
		}
		h.Serve(w, r, id, since, e.store.snapshot(id))
	})
	e.srv = httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	go func() { e.done <- h.Run(ctx) }()
	t.Cleanup(func() {
		e.shutdown(t)
		e.srv.Close()
	})
	return e
}

// shutdown stops Run (idempotent) and returns its error.
func (e *env) shutdown(t testing.TB) {
	e.stop()
	select {
	case err, ok := <-e.done:
		if ok {
			require.NoError(t, err)
			close(e.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
}

func (e *env) pipeline(t testing.TB, id string) *pipeline {
	p := &pipeline{t: t, hub: e.hub, store: e.store, id: id}
	p.update(0, false) // the import exists before anyone watches it
	return p
}

func (e *env) url(id string, since int64) string {
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/imports/" + id + "/progress"
	if since > 0 {
		u += "?since=" + strconv.FormatInt(since, 10)
	}
	return u
}

func (e *env) dial(t testing.TB, id string, since int64) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(e.url(id, since), nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// msg is a decoded server message.
type msg struct {
	Type   string          `json:"type"`
	Seq    int64           `json:"seq"`
	Import json.RawMessage `json:"import"`
}

func (m msg) summary(t testing.TB) summary {
	var s summary
	require.NoError(t, json.Unmarshal(m.Import, &s))
	return s
}

func readMsg(t testing.TB, conn *websocket.Conn) (msg, error) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, data, err := conn.ReadMessage()
	if err != nil {
		return msg{}, err
	}
	require.Equal(t, websocket.TextMessage, typ)
	var m msg
	require.NoError(t, json.Unmarshal(data, &m), "message %q", data)
	return m, nil
}

// mustRead reads one message and fails the test on error.
func mustRead(t testing.TB, conn *websocket.Conn) msg {
	t.Helper()
	m, err := readMsg(t, conn)
	require.NoError(t, err)
	return m
}

// readUntilClosed reads messages until the connection ends and returns them
// with the error that ended it.
func readUntilClosed(t testing.TB, conn *websocket.Conn) ([]msg, error) {
	t.Helper()
	var out []msg
	for {
		m, err := readMsg(t, conn)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// collector reads a connection in the background.
type collector struct {
	mu   sync.Mutex
	msgs []msg
	err  error
	done chan struct{}
}

func collect(t testing.TB, conn *websocket.Conn) *collector {
	c := &collector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := conn.ReadMessage()
			if err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			var m msg
			if err := json.Unmarshal(data, &m); err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collector) last() (msg, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) == 0 {
		return msg{}, false
	}
	return c.msgs[len(c.msgs)-1], true
}

func (c *collector) wait(t testing.TB) ([]msg, error) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		t.Fatal("connection did not end")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs, c.err
}

// requireValidStream checks the protocol invariants of one connection's
// messages: snapshot first, strictly increasing seqs, exactly one completed
// as the last message (if wantCompleted), and a normal closure.
func requireValidStream(t testing.TB, msgs []msg, endErr error, wantCompleted bool) {
	t.Helper()
	require.NotEmpty(t, msgs)
	require.Equal(t, typeSnapshot, msgs[0].Type, "first message must be a snapshot")
	completed := 0
	for i, m := range msgs {
		switch m.Type {
		case typeSnapshot:
			require.Zero(t, i, "snapshot only first")
		case typeProgress:
		case typeCompleted:
			completed++
			require.Equal(t, len(msgs)-1, i, "completed must be the last message")
		default:
			t.Fatalf("unknown message type %q", m.Type)
		}
		if i == 0 {
			continue
		}
		prev := msgs[i-1]
		if m.Type == typeCompleted && m.Seq == prev.Seq {
			// Allowed only for an import already complete at connect time.
			require.Equal(t, 1, i, "completed may repeat only the snapshot's seq")
			require.Equal(t, "completed", prev.summary(t).State)
			require.JSONEq(t, string(prev.Import), string(m.Import))
			continue
		}
		require.Greater(t, m.Seq, prev.Seq, "seq must strictly increase (message %d)", i)
	}
	if wantCompleted {
		require.Equal(t, 1, completed, "exactly one completed")
		var ce *websocket.CloseError
		require.True(t, errors.As(endErr, &ce), "want close frame, got %v", endErr)
		require.Equal(t, websocket.CloseNormalClosure, ce.Code)
	}
}
