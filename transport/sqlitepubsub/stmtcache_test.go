package sqlitepubsub

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// oneConn opens a pool and returns one of its connections, with its
// statement cache.
func oneConn(t *testing.T) (*sql.Conn, *stmtCache) {
	t.Helper()
	db, err := OpenDB(filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var cache *stmtCache
	if err := conn.Raw(func(c any) error {
		cache = c.(*gatedConn).stmts
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustExecConn(t, conn, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
	return conn, cache
}

func mustExecConn(t *testing.T, conn *sql.Conn, q string, args ...any) {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func values(t *testing.T, conn *sql.Conn, q string, args ...any) []string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// cached returns the cached statement of query, or nil.
func (c *stmtCache) cached(query string) *cachedStmt {
	if e, ok := c.byQuery[query]; ok {
		return e.Value.(*cachedStmt)
	}
	return nil
}

func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	const (
		insert = `INSERT INTO t (k, v) VALUES (?, ?)`
		byKey  = `SELECT v FROM t WHERE k >= ? ORDER BY k`
	)

	t.Run("a statement is prepared once and runs again with new arguments", func(t *testing.T) {
		conn, cache := oneConn(t)
		mustExecConn(t, conn, insert, 1, "one")
		first := cache.cached(insert)
		if first == nil {
			t.Fatal("the INSERT was not cached")
		}
		mustExecConn(t, conn, insert, 2, "two")
		if cache.cached(insert) != first {
			t.Fatal("the second INSERT was prepared again")
		}
		for range 2 {
			if got := fmt.Sprint(values(t, conn, byKey, 2)); got != "[two]" {
				t.Fatalf("rows %s, want [two]", got)
			}
		}
		if got := fmt.Sprint(values(t, conn, byKey, 1)); got != "[one two]" {
			t.Fatalf("rows %s, want [one two]", got)
		}
	})

	t.Run("a query whose rows are open runs uncached", func(t *testing.T) {
		conn, cache := oneConn(t)
		mustExecConn(t, conn, insert, 1, "one")
		mustExecConn(t, conn, insert, 2, "two")
		outer, err := conn.QueryContext(ctx, byKey, 1)
		if err != nil {
			t.Fatal(err)
		}
		if cs := cache.cached(byKey); cs == nil || !cs.busy {
			t.Fatal("the open query's statement is not cached and busy")
		}
		var got []string
		for outer.Next() {
			var v string
			if err := outer.Scan(&v); err != nil {
				t.Fatal(err)
			}
			// The same text while the outer rows are open: its own statement.
			got = append(got, v+"="+fmt.Sprint(values(t, conn, byKey, 2)))
		}
		if err := outer.Close(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[one=[two] two=[two]]" {
			t.Fatalf("rows %v", got)
		}
		if cache.cached(byKey).busy {
			t.Fatal("closing the rows left the statement busy")
		}
	})

	t.Run("a statement that failed runs again", func(t *testing.T) {
		conn, _ := oneConn(t)
		mustExecConn(t, conn, insert, 1, "one")
		if _, err := conn.ExecContext(ctx, insert, 1, "again"); err == nil {
			t.Fatal("a duplicate key was inserted")
		}
		mustExecConn(t, conn, insert, 2, "two")
		if got := fmt.Sprint(values(t, conn, byKey, 0)); got != "[one two]" {
			t.Fatalf("rows %s, want [one two]", got)
		}
	})

	t.Run("the least recently used statements give way", func(t *testing.T) {
		conn, cache := oneConn(t)
		mustExecConn(t, conn, insert, 1, "one")
		for i := range stmtCacheSize + 10 {
			q := fmt.Sprintf(`SELECT v || '%d' FROM t`, i)
			if got := fmt.Sprint(values(t, conn, q)); got != fmt.Sprintf("[one%d]", i) {
				t.Fatalf("%s: %s", q, got)
			}
		}
		if n := cache.recent.Len(); n != stmtCacheSize || len(cache.byQuery) != n {
			t.Fatalf("%d statements cached (%d indexed), want %d", n, len(cache.byQuery), stmtCacheSize)
		}
		if cache.cached(insert) != nil || cache.cached(`SELECT v || '0' FROM t`) != nil {
			t.Fatal("the oldest statements are still cached")
		}
	})

	t.Run("a statement follows a table that was replaced", func(t *testing.T) {
		conn, _ := oneConn(t)
		mustExecConn(t, conn, insert, 1, "old")
		if got := fmt.Sprint(values(t, conn, byKey, 0)); got != "[old]" {
			t.Fatalf("rows %s", got)
		}
		// What a replay's swap does: the table is dropped and another takes its name.
		mustExecConn(t, conn, `CREATE TABLE t2 (x TEXT, k INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
		mustExecConn(t, conn, `INSERT INTO t2 (x, k, v) VALUES ('-', 5, 'new')`)
		mustExecConn(t, conn, `DROP TABLE t`)
		mustExecConn(t, conn, `ALTER TABLE t2 RENAME TO t`)
		if got := fmt.Sprint(values(t, conn, byKey, 0)); got != "[new]" {
			t.Fatalf("rows %s, want [new]", got)
		}
	})
}
