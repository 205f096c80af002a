package storage

import (
	"strconv"
	"strings"
)

// Dialect names the SQL flavour of a database.
type Dialect string

// The SQL flavours phonepipe speaks.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
)

// Rebind rewrites `?` placeholders into the dialect's own ($1, $2 … for
// PostgreSQL). Queries are written with `?`; no query contains a literal `?`.
func (d Dialect) Rebind(q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Values returns the VALUES list of a multi-row INSERT: rows groups of
// width placeholders, "(?,?),(?,?)".
func Values(rows, width int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", width), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// Placeholders returns n comma-separated placeholders, for IN lists.
func Placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// OneOf returns the condition "column is one of values" and its arguments.
// On PostgreSQL it is `column = ANY(?)` with the values as one array
// argument. Without statistics (a new table during its first large import)
// PostgreSQL plans a long IN list on a key whose leading column is also
// bound (tenant = ? AND e164 IN (…)) as a scan of every row of the leading
// column; the generic plan of an array argument, which does not count its
// elements, probes the whole key instead, and one statement text serves
// every batch size. (Plans made while a table was tiny can still scan:
// Statistics keeps the statistics that prevent it.) Elsewhere it is an IN
// list with one placeholder per value. values must not be empty.
func OneOf[T any](d Dialect, column string, values []T) (string, []any) {
	if d == Postgres {
		return column + " = ANY(?)", []any{values}
	}
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return column + " IN (" + Placeholders(len(values)) + ")", args
}

// InsertIgnore returns a multi-row INSERT of rows into table that skips the
// rows whose key already exists (and affects no row for them).
func (d Dialect) InsertIgnore(table string, columns []string, rows int) string {
	q := "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES " + Values(rows, len(columns))
	if d == MySQL {
		// INSERT IGNORE would also turn other errors into warnings; a no-op
		// update on the duplicate key skips only the duplicates.
		return q + " ON DUPLICATE KEY UPDATE " + columns[0] + " = " + columns[0]
	}
	return q + " ON CONFLICT DO NOTHING"
}

// LockOrInsert returns a multi-row INSERT of rows into table that, for each
// row in the order given, inserts it if its key (the columns of key) is
// missing and otherwise locks the existing row (a no-op update); append a
// RETURNING clause to read the rows as they are now, existing or new.
// PostgreSQL and SQLite only (MySQL has no RETURNING).
//
// Given rows in key order, every row is taken in that order. Inserting the
// missing rows first and locking the others with a SELECT … FOR UPDATE after
// takes the new rows out of order: two transactions deadlock when one
// locks a row that the other locked in an earlier statement while the
// other waits on a row the first has just inserted.
func (d Dialect) LockOrInsert(table string, columns []string, rows int, key ...string) string {
	return "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES " + Values(rows, len(columns)) +
		" ON CONFLICT (" + strings.Join(key, ", ") + ") DO UPDATE SET " + key[0] + " = " + table + "." + key[0]
}

// OnConflictUpdate starts the clause of an INSERT that updates the row whose
// key (the columns of key) already exists; the SET list follows.
func (d Dialect) OnConflictUpdate(key ...string) string {
	if d == MySQL {
		return "ON DUPLICATE KEY UPDATE"
	}
	return "ON CONFLICT (" + strings.Join(key, ", ") + ") DO UPDATE SET"
}

// Excluded names the value an upsert tried to insert into column.
func (d Dialect) Excluded(column string) string {
	if d == MySQL {
		return "VALUES(" + column + ")"
	}
	return "excluded." + column
}

// Least is the function returning the smallest of its arguments: SQLite's
// scalar MIN, LEAST elsewhere.
func (d Dialect) Least() string {
	if d == SQLite {
		return "MIN"
	}
	return "LEAST"
}

// ForUpdate is the locking clause of a read-then-write SELECT. SQLite has
// none and needs none: a writing transaction holds the database's only
// write lock from its start (BEGIN IMMEDIATE).
func (d Dialect) ForUpdate() string {
	if d == SQLite {
		return ""
	}
	return " FOR UPDATE"
}
