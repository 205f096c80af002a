package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// importState is an import's summary, as GET /v1/imports/{id} answers it and
// the progress WebSocket carries it.
type importState struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Total      int    `json:"total"`
	Processed  int    `json:"processed"`
	Valid      int    `json:"valid"`
	Invalid    int    `json:"invalid"`
	Duplicates int    `json:"duplicates"`
	Failed     int    `json:"failed"`
}

// progressMessage is one server → client message of the progress WebSocket.
type progressMessage struct {
	Type   string      `json:"type"`
	Seq    int64       `json:"seq"`
	Import importState `json:"import"`
}

// Message types of the progress WebSocket.
const (
	msgSnapshot  = "snapshot"
	msgCompleted = "completed"
)

// Defaults of a watcher.
const (
	defaultReconnectTimeout = 30 * time.Second
	defaultBackoffMin       = 200 * time.Millisecond
	defaultBackoffMax       = 5 * time.Second
	// defaultIdleTimeout is how long a connection may stay silent (no message
	// and no ping; the server pings every 20s) before it counts as dropped.
	defaultIdleTimeout = 65 * time.Second
	handshakeTimeout   = 10 * time.Second
)

// apiError is an error answer of the API, in its {"error":{...}} shape.
type apiError struct {
	Status     string // "422 Unprocessable Entity"
	StatusCode int
	Code       string // the API's machine code, e.g. "no_rows"
	Message    string
	Line       int // the upload line the error concerns, when known
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server answered %s", e.Status)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	return b.String()
}

// newAPIError describes a failed answer, using the API's error shape when the
// body has it and the raw body otherwise.
func newAPIError(resp *http.Response, body []byte) *apiError {
	e := &apiError{Status: resp.Status, StatusCode: resp.StatusCode}
	var shaped struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Line    int    `json:"line"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &shaped) == nil && shaped.Error.Message != "" {
		e.Code, e.Message, e.Line = shaped.Error.Code, shaped.Error.Message, shaped.Error.Line
		return e
	}
	// Not the API's shape (a proxy's page, say): show its start.
	msg := strings.TrimSpace(string(body))
	if len(msg) > 300 {
		msg = strings.ToValidUTF8(msg[:300], "") + "…"
	}
	e.Message = msg
	return e
}

// permanent reports whether retrying the same request cannot help: every
// 4xx except 408 (request timeout) and 429 (too many requests).
func (e *apiError) permanent() bool {
	c := e.StatusCode
	return c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests
}

// watcher follows one import over the progress WebSocket until it completes,
// reconnecting with ?since=<last seq> when the connection drops.
type watcher struct {
	server string // base URL, http(s)://host[:port][/prefix]
	apiKey string
	id     string
	dialer *websocket.Dialer
	// reconnectTimeout bounds how long the watcher keeps trying to get a
	// working connection (one that delivers a message) after the previous
	// one dropped (or from the start); past it, watch fails.
	reconnectTimeout       time.Duration
	backoffMin, backoffMax time.Duration
	idleTimeout            time.Duration
	// onUpdate receives every new state, in seq order (the final one too).
	onUpdate func(importState)
	// onDrop is told about each lost or failed connection before the retry.
	onDrop func(err error, retryIn time.Duration)
}

// newWatcher returns a watcher with the default bounds.
func newWatcher(server, apiKey, id string) *watcher {
	return &watcher{
		server:           strings.TrimRight(server, "/"),
		apiKey:           apiKey,
		id:               id,
		dialer:           &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: handshakeTimeout},
		reconnectTimeout: defaultReconnectTimeout,
		backoffMin:       defaultBackoffMin,
		backoffMax:       defaultBackoffMax,
		idleTimeout:      defaultIdleTimeout,
		onUpdate:         func(importState) {},
		onDrop:           func(error, time.Duration) {},
	}
}

// progressURL is the WebSocket URL of the import's progress, resuming after
// seq since when since > 0.
func (w *watcher) progressURL(since int64) (string, error) {
	u, err := url.Parse(w.server)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", w.server, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("server URL %q: want http or https", w.server)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/imports/" + url.PathEscape(w.id) + "/progress"
	u.RawPath = ""
	q := url.Values{}
	if since > 0 {
		q.Set("since", strconv.FormatInt(since, 10))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// watch follows the import until its "completed" message and returns that
// final state. It fails at once on a 4xx handshake answer (unknown import,
// wrong key), and when a lost connection cannot be re-established (to one
// that delivers a message) within reconnectTimeout.
func (w *watcher) watch(ctx context.Context) (importState, error) {
	var (
		since   int64
		attempt int
		// outage is when the current run of failed connections began: the
		// start, or the moment the last working connection dropped.
		outage = time.Now()
	)
	for {
		got, err := w.session(ctx, since)
		if got.final != nil {
			return *got.final, nil
		}
		if ctx.Err() != nil {
			return importState{}, fmt.Errorf("watch import %s: %w", w.id, ctx.Err())
		}
		if pe := (*permanentError)(nil); errors.As(err, &pe) {
			return importState{}, fmt.Errorf("progress of import %s: %w", w.id, pe.err)
		}
		if got.received {
			since, attempt, outage = got.seq, 0, time.Now()
		}
		if time.Since(outage) >= w.reconnectTimeout {
			return importState{}, fmt.Errorf("progress of import %s: could not reconnect within %s, giving up: %w",
				w.id, w.reconnectTimeout.Round(time.Millisecond), err)
		}
		delay := w.backoff(attempt)
		attempt++
		w.onDrop(err, delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return importState{}, fmt.Errorf("watch import %s: %w", w.id, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is the delay before retry number attempt (0-based): exponential
// from backoffMin, capped at backoffMax, with jitter in [d/2, d].
func (w *watcher) backoff(attempt int) time.Duration {
	d := w.backoffMin
	for i := 0; i < attempt && d < w.backoffMax; i++ {
		d *= 2
	}
	d = min(d, w.backoffMax)
	if half := int64(d / 2); half > 0 {
		d = time.Duration(half + rand.Int64N(half+1))
	}
	return d
}

// sessionResult is what one connection delivered.
type sessionResult struct {
	received bool         // at least one message arrived
	seq      int64        // the highest seq seen (or the since it started with)
	final    *importState // the completed state, when "completed" arrived
}

// permanentError marks a failure that reconnecting cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// session runs one connection: dial with since, then read until "completed"
// or a drop.
func (w *watcher) session(ctx context.Context, since int64) (sessionResult, error) {
	got := sessionResult{seq: since}
	target, err := w.progressURL(since)
	if err != nil {
		return got, &permanentError{err}
	}
	header := http.Header{}
	if w.apiKey != "" {
		header.Set("Authorization", "Bearer "+w.apiKey)
	}
	conn, resp, err := w.dialer.DialContext(ctx, target, header)
	if err != nil {
		if resp == nil {
			return got, fmt.Errorf("connect to %s: %w", target, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		ae := newAPIError(resp, body)
		if ae.permanent() {
			return got, &permanentError{fmt.Errorf("connect to %s: %w", target, ae)}
		}
		return got, fmt.Errorf("connect to %s: %w", target, ae)
	}
	defer conn.Close()
	// Unblock the read when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	alive := func() error { return conn.SetReadDeadline(time.Now().Add(w.idleTimeout)) }
	conn.SetPingHandler(func(data string) error {
		if err := alive(); err != nil {
			return err
		}
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	conn.SetReadLimit(1 << 20)
	for {
		if err := alive(); err != nil {
			return got, fmt.Errorf("progress connection: %w", err)
		}
		var msg progressMessage
		if err := conn.ReadJSON(&msg); err != nil {
			return got, fmt.Errorf("progress connection lost: %w", err)
		}
		got.received = true
		if msg.Type == msgCompleted {
			w.onUpdate(msg.Import)
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			got.final = &msg.Import
			return got, nil
		}
		// Every message carries the whole state; only stale ones are skipped.
		if msg.Type == msgSnapshot || msg.Seq > got.seq {
			w.onUpdate(msg.Import)
		}
		got.seq = max(got.seq, msg.Seq)
	}
}
