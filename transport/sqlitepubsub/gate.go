package sqlitepubsub

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// writeGate hands one pool's write transactions the database's write lock in
// first-come, first-served order, with a priority lane in front.
//
// SQLite itself has no queue for its write lock: a connection that finds it
// taken sleeps (up to 100ms at a time) and retries until busy_timeout. A
// writer that commits and immediately begins again — a subscriber draining a
// backlog does exactly that — therefore wins nearly every time, and the other
// writers of the process fail with SQLITE_BUSY after busy_timeout. The gate
// queues the writers of the pool in Go instead: a subscriber that begins its
// next batch lines up behind everyone already waiting.
//
// Writers whose context carries WithWritePriority (a client waiting for its
// answer, such as an upload being accepted) are served before the ordinary
// queue, in their own first-come, first-served order: they wait for the
// current holder only, not for the backlog of subscribers behind it.
//
// The gate is only an optimization for fairness and latency; correctness
// never depends on it. SQLite's own lock still serializes all writers
// (including other pools and processes), and a writer that waited busy_timeout
// for the gate proceeds without it and lets SQLite decide.
type writeGate struct {
	mu     sync.Mutex
	held   bool
	urgent []chan struct{} // waiting writers with priority, oldest first
	normal []chan struct{} // the other waiting writers, oldest first
}

func newWriteGate() *writeGate {
	return &writeGate{}
}

// priorityKey marks a context whose write transactions jump the queue.
type priorityKey struct{}

// WithWritePriority returns a context whose write transactions (and
// autocommit writes) on a pool opened by OpenDB are served before those
// already queued without priority. Use it for the few short writes a client
// waits for; a long transaction with priority still holds the lock as long
// as it runs.
func WithWritePriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

func hasWritePriority(ctx context.Context) bool {
	p, _ := ctx.Value(priorityKey{}).(bool)
	return p
}

// acquire waits for the gate until ctx is done or busyTimeout passed, and
// reports whether it got it.
func (g *writeGate) acquire(ctx context.Context) bool {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return true
	}
	turn := make(chan struct{})
	urgent := hasWritePriority(ctx)
	if urgent {
		g.urgent = append(g.urgent, turn)
	} else {
		g.normal = append(g.normal, turn)
	}
	g.mu.Unlock()

	timer := time.NewTimer(busyTimeout)
	defer timer.Stop()
	select {
	case <-turn:
		return true
	case <-ctx.Done():
	case <-timer.C:
	}
	g.mu.Lock()
	removed := g.remove(turn, urgent)
	g.mu.Unlock()
	if !removed {
		// The gate was handed over while we gave up: pass it on.
		<-turn
		g.release()
	}
	return false
}

// remove takes turn out of its queue and reports whether it was there.
// The caller holds g.mu.
func (g *writeGate) remove(turn chan struct{}, urgent bool) bool {
	q := &g.normal
	if urgent {
		q = &g.urgent
	}
	for i, c := range *q {
		if c == turn {
			*q = append((*q)[:i], (*q)[i+1:]...)
			return true
		}
	}
	return false
}

// release hands the gate to the oldest urgent waiter, else to the oldest
// other waiter, else frees it.
func (g *writeGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next chan struct{}
	switch {
	case len(g.urgent) > 0:
		next, g.urgent = g.urgent[0], g.urgent[1:]
	case len(g.normal) > 0:
		next, g.normal = g.normal[0], g.normal[1:]
	default:
		g.held = false
		return
	}
	close(next)
}

// gatedConnector opens modernc.org/sqlite connections that pass their write
// transactions and autocommit Exec calls through a writeGate. It owns the
// pool's background checkpointer, if any: (*sql.DB).Close closes it.
type gatedConnector struct {
	driver.Connector
	gate        *writeGate
	checkpoints *checkpointer
}

// Close implements io.Closer, which (*sql.DB).Close calls.
func (c *gatedConnector) Close() error {
	if c.checkpoints == nil {
		return nil
	}
	return c.checkpoints.close()
}

// Driver implements driver.Connector. The distinct type lets NewSubscriber
// recognize a pool opened by OpenDB through (*sql.DB).Driver.
func (c *gatedConnector) Driver() driver.Driver {
	return openDBDriver{c.Connector.Driver()}
}

// openDBDriver marks the driver of pools opened by OpenDB.
type openDBDriver struct {
	driver.Driver
}

// sqliteConn is what a modernc.org/sqlite connection implements and
// gatedConn forwards.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// Connect implements driver.Connector.
func (c *gatedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("sqlite driver connection %T lacks expected methods", conn)
	}
	return &gatedConn{conn: sc, gate: c.gate, stmts: newStmtCache()}, nil
}

// gatedConn is one pooled connection. database/sql uses a connection from
// one goroutine at a time; mu only guards against a Close racing with the
// end of a transaction.
type gatedConn struct {
	conn  sqliteConn
	gate  *writeGate
	stmts *stmtCache // used only by the goroutine using the connection

	mu   sync.Mutex
	inTx bool // a transaction is open on this connection
	held bool // and it holds the gate
}

var (
	_ sqliteConn = (*gatedConn)(nil)
	_ driver.Tx  = (*gatedTx)(nil)
)

// Unwrap returns the underlying modernc.org/sqlite connection, for callers of
// (*sql.Conn).Raw that need its extensions (backup, hooks, ...).
func (c *gatedConn) Unwrap() driver.Conn { return c.conn }

func (c *gatedConn) inTransaction() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inTx
}

// Begin implements driver.Conn.
func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx implements driver.ConnBeginTx: a read-write transaction (BEGIN
// IMMEDIATE) first waits for the gate and holds it until it ends.
func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.inTransaction() {
		return nil, errors.New("sqlite connection already has an open transaction")
	}
	held := !opts.ReadOnly && c.gate.acquire(ctx)
	tx, err := c.conn.BeginTx(ctx, opts)
	if err != nil {
		if held {
			c.gate.release()
		}
		return nil, err
	}
	c.mu.Lock()
	c.inTx, c.held = true, held
	c.mu.Unlock()
	return &gatedTx{tx: tx, conn: c}, nil
}

// endTx marks the transaction ended and releases the gate if it held it.
func (c *gatedConn) endTx() {
	c.mu.Lock()
	held := c.held
	c.inTx, c.held = false, false
	c.mu.Unlock()
	if held {
		c.gate.release()
	}
}

// autocommit is how ExecContext runs a statement outside a transaction.
type autocommit int

const (
	// runUngated: the statement needs no write lock (PRAGMA, a query), or
	// takes it rarely enough for SQLite's own lock to serialize it.
	runUngated autocommit = iota
	// runGated: the statement takes the write lock (DML, and DDL that
	// changes the schema) and waits for the gate first. DDL has to queue
	// like the writers: a subscriber that creates its topic's tables while
	// others drain their backlogs would otherwise wait out busy_timeout and
	// fail with SQLITE_BUSY.
	runGated
	// skipNoOp: a CREATE … IF NOT EXISTS of an object that exists, which
	// every subscriber of a topic runs at start. SQLite would do nothing,
	// but a statement compiled before the object existed (cached here: the
	// connection that created the table keeps its CREATE compiled to
	// create it) first takes the write lock. It must not queue at the gate
	// either: a writer holding the gate may be waiting for its caller (a
	// subscriber's transaction holds it until its message is consumed).
	// So it is not run at all.
	skipNoOp
)

// autocommitOf says how query runs outside a transaction.
func (c *gatedConn) autocommitOf(ctx context.Context, query string) autocommit {
	switch {
	case isDML(query):
		return runGated
	case !isDDL(query):
		return runUngated
	case c.createsExisting(ctx, query):
		return skipNoOp
	default:
		return runGated
	}
}

// createsExisting reports whether query is one CREATE TABLE|INDEX … IF NOT
// EXISTS of a table (or view) or index that exists: a statement SQLite
// runs as a no-op. A query with more than one statement (any ';' before
// the end, even one in a literal) is never one.
func (c *gatedConn) createsExisting(ctx context.Context, query string) bool {
	if strings.Contains(strings.TrimRight(query, "; \t\r\n"), ";") {
		return false
	}
	m := createIfNotExists.FindStringSubmatch(query)
	if m == nil {
		return false
	}
	name := m[3]
	if m[2] != "" {
		name = strings.ReplaceAll(m[2], `""`, `"`)
	}
	types := "'table', 'view'" // what CREATE TABLE IF NOT EXISTS accepts as existing
	if strings.EqualFold(m[1], "INDEX") {
		types = "'index'"
	}
	return c.schemaHas(ctx, name, types)
}

// schemaHas reports whether the database has an object of one of types (a
// quoted SQL list) named name (false if it cannot tell).
func (c *gatedConn) schemaHas(ctx context.Context, name, types string) bool {
	rows, err := c.conn.QueryContext(ctx, `SELECT 1 FROM sqlite_schema WHERE name = ? COLLATE NOCASE AND type IN (`+types+`)`,
		[]driver.NamedValue{{Ordinal: 1, Value: name}})
	if err != nil {
		return false
	}
	defer rows.Close()
	return rows.Next(make([]driver.Value, 1)) == nil
}

// Close implements driver.Conn.
func (c *gatedConn) Close() error {
	c.endTx()
	c.stmts.close()
	return c.conn.Close()
}

// ExecContext implements driver.ExecerContext. Outside a transaction a
// statement that takes the write lock (an autocommit write, e.g. a
// publisher on the *sql.DB, or DDL that changes the schema) waits for the
// gate, and a CREATE … IF NOT EXISTS of an existing object is not run: see
// autocommit. (Run ungated while the gate's writers hand the lock over
// back to back, such a CREATE was not granted the lock within
// busy_timeout and failed with SQLITE_BUSY: a subscriber's schema check
// failed so while an import ran.)
func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if !c.inTransaction() {
		switch c.autocommitOf(ctx, query) {
		case skipNoOp:
			return driver.RowsAffected(0), nil
		case runGated:
			if c.gate.acquire(ctx) {
				defer c.gate.release()
			}
		}
	}
	if stmt, done := c.stmts.take(ctx, c.conn, query); stmt != nil {
		defer done()
		return stmt.ExecContext(ctx, args)
	}
	return c.conn.ExecContext(ctx, query, args)
}

// QueryContext implements driver.QueryerContext. Queries do not wait for the
// gate: readers never need the write lock in WAL mode. (A writing query such
// as INSERT ... RETURNING outside a transaction still works, serialized by
// SQLite's own lock.) Both run a cached statement when they can (see
// stmtCache).
func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	stmt, done := c.stmts.take(ctx, c.conn, query)
	if stmt == nil {
		return c.conn.QueryContext(ctx, query, args)
	}
	rows, err := stmt.QueryContext(ctx, args)
	if err != nil {
		done()
		return nil, err
	}
	sr, ok := rows.(sqliteRows)
	if !ok {
		_ = rows.Close()
		done()
		return nil, fmt.Errorf("sqlite driver rows %T lack expected methods", rows)
	}
	return &cachedRows{sqliteRows: sr, done: done}, nil
}

// Prepare implements driver.Conn.
func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext implements driver.ConnPrepareContext.
func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	stmt, ok := s.(sqliteStmt)
	if !ok {
		_ = s.Close()
		return nil, fmt.Errorf("sqlite driver statement %T lacks expected methods", s)
	}
	return &gatedStmt{stmt: stmt, conn: c, dml: isDML(query)}, nil
}

// Ping implements driver.Pinger.
func (c *gatedConn) Ping(ctx context.Context) error { return c.conn.Ping(ctx) }

// ResetSession implements driver.SessionResetter.
func (c *gatedConn) ResetSession(ctx context.Context) error { return c.conn.ResetSession(ctx) }

// IsValid implements driver.Validator.
func (c *gatedConn) IsValid() bool { return c.conn.IsValid() }

// gatedTx ends a transaction of a gatedConn.
type gatedTx struct {
	tx   driver.Tx
	conn *gatedConn
}

// Commit implements driver.Tx. The driver rolls back a transaction whose
// COMMIT failed, so the transaction is over either way.
func (t *gatedTx) Commit() error {
	defer t.conn.endTx()
	return t.tx.Commit()
}

// Rollback implements driver.Tx.
func (t *gatedTx) Rollback() error {
	defer t.conn.endTx()
	return t.tx.Rollback()
}

// sqliteStmt is what a modernc.org/sqlite statement implements and
// gatedStmt forwards.
type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// gatedStmt is a prepared statement of a gatedConn; executing a write
// outside a transaction waits for the gate like gatedConn.ExecContext.
type gatedStmt struct {
	stmt sqliteStmt
	conn *gatedConn
	dml  bool // see isDML
}

// gated reports whether executing the statement now waits for the gate.
func (s *gatedStmt) gated() bool {
	return s.dml && !s.conn.inTransaction()
}

var _ sqliteStmt = (*gatedStmt)(nil)

// Close implements driver.Stmt.
func (s *gatedStmt) Close() error { return s.stmt.Close() }

// NumInput implements driver.Stmt.
func (s *gatedStmt) NumInput() int { return s.stmt.NumInput() }

// Exec implements driver.Stmt.
func (s *gatedStmt) Exec(args []driver.Value) (driver.Result, error) {
	if s.gated() && s.conn.gate.acquire(context.Background()) {
		defer s.conn.gate.release()
	}
	return s.stmt.Exec(args) //nolint:staticcheck // forwarding the deprecated method
}

// Query implements driver.Stmt.
func (s *gatedStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.stmt.Query(args) //nolint:staticcheck // forwarding the deprecated method
}

// ExecContext implements driver.StmtExecContext.
func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.gated() && s.conn.gate.acquire(ctx) {
		defer s.conn.gate.release()
	}
	return s.stmt.ExecContext(ctx, args)
}

// QueryContext implements driver.StmtQueryContext.
func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.stmt.QueryContext(ctx, args)
}

// isDML reports whether query starts (after blanks and comments) with
// INSERT, UPDATE, DELETE or REPLACE.
func isDML(query string) bool {
	switch firstWord(query) {
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
		return true
	}
	return false
}

// isDDL reports whether query starts (after blanks and comments) with
// CREATE, DROP or ALTER.
func isDDL(query string) bool {
	switch firstWord(query) {
	case "CREATE", "DROP", "ALTER":
		return true
	}
	return false
}

// firstWord returns the first keyword of query, upper-cased, after blanks
// and comments.
func firstWord(query string) string {
	for {
		query = strings.TrimLeft(query, " \t\r\n\f")
		switch {
		case strings.HasPrefix(query, "--"):
			i := strings.IndexByte(query, '\n')
			if i < 0 {
				return ""
			}
			query = query[i+1:]
		case strings.HasPrefix(query, "/*"):
			i := strings.Index(query[2:], "*/")
			if i < 0 {
				return ""
			}
			query = query[2+i+2:]
		default:
			end := strings.IndexFunc(query, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
			})
			if end < 0 {
				end = len(query)
			}
			return strings.ToUpper(query[:end])
		}
	}
}

// createIfNotExists matches CREATE [UNIQUE] TABLE|INDEX IF NOT EXISTS name,
// the name bare or in double quotes (see quoteIdent) and followed by a
// blank or "(" (so that a schema-qualified name, main.t, does not match).
var createIfNotExists = regexp.MustCompile(`(?is)^\s*CREATE\s+(?:UNIQUE\s+)?(TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(?:"((?:[^"]|"")+)"|(\w+))[\s(]`)
