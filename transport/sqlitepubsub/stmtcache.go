package sqlitepubsub

import (
	"container/list"
	"context"
	"database/sql/driver"
)

// stmtCacheSize bounds the prepared statements one connection keeps. The
// pipeline's transactions run a few dozen distinct statements (a batch's
// size is part of a multi-row statement's text); each cached statement is a
// compiled program of a few to a few hundred kilobytes.
const stmtCacheSize = 64

// stmtCache keeps one connection's most recently used statements prepared.
//
// database/sql hands a query that is not an explicit Prepare straight to the
// driver, and modernc.org/sqlite compiles it every time: 4 % of the embedded
// pipeline's CPU, all of it inside write transactions, which hold the
// database's only write lock. A cached statement is compiled once per
// connection. It serves one caller at a time: while the rows of one query
// are open, the same text runs uncached.
//
// A cache belongs to one connection, which database/sql uses from one
// goroutine at a time, so it needs no lock.
type stmtCache struct {
	byQuery map[string]*list.Element // of *cachedStmt
	recent  list.List                // most recently used first
}

// cachedStmt is a prepared statement of the cache.
type cachedStmt struct {
	query string
	stmt  sqliteStmt
	busy  bool // its rows are open
}

func newStmtCache() *stmtCache {
	return &stmtCache{byQuery: make(map[string]*list.Element)}
}

// take returns the prepared statement of query, marked busy until the
// caller calls done, or nil when the caller should run query uncached: the
// statement is busy, or could not be prepared (running it uncached reports
// why).
func (c *stmtCache) take(ctx context.Context, conn driver.ConnPrepareContext, query string) (stmt sqliteStmt, done func()) {
	if e, ok := c.byQuery[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.recent.MoveToFront(e)
		cs.busy = true
		return cs.stmt, func() { cs.busy = false }
	}
	s, err := conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil
	}
	ss, ok := s.(sqliteStmt)
	if !ok {
		_ = s.Close()
		return nil, nil
	}
	c.evict()
	cs := &cachedStmt{query: query, stmt: ss, busy: true}
	c.byQuery[query] = c.recent.PushFront(cs)
	return ss, func() { cs.busy = false }
}

// evict closes least recently used statements that are not busy until
// there is room for one more.
func (c *stmtCache) evict() {
	for e := c.recent.Back(); e != nil && c.recent.Len() >= stmtCacheSize; {
		prev := e.Prev()
		if cs := e.Value.(*cachedStmt); !cs.busy {
			_ = cs.stmt.Close()
			c.recent.Remove(e)
			delete(c.byQuery, cs.query)
		}
		e = prev
	}
}

// close closes every cached statement.
func (c *stmtCache) close() {
	for e := c.recent.Front(); e != nil; e = e.Next() {
		_ = e.Value.(*cachedStmt).stmt.Close()
	}
	c.recent.Init()
	clear(c.byQuery)
}

// sqliteRows is what modernc.org/sqlite's rows implement and cachedRows
// forwards (the column types serve (*sql.Rows).ColumnTypes).
type sqliteRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// cachedRows are the rows of a cached statement; closing them frees the
// statement for the next caller.
type cachedRows struct {
	sqliteRows
	done func()
}

// Close implements driver.Rows.
func (r *cachedRows) Close() error {
	err := r.sqliteRows.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return err
}
