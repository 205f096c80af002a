package webhooks

import (
	"fmt"
	"strconv"
	"strings"
)

// Dialect names the SQL database the Store talks to. The Store writes portable
// SQL with `?` placeholders and adapts it per dialect (placeholders for
// postgres, DDL types and insert-if-absent syntax).
type Dialect string

// Supported dialects.
const (
	DialectSQLite   Dialect = "sqlite"
	DialectPostgres Dialect = "postgres"
	DialectMySQL    Dialect = "mysql"
)

func (d Dialect) validate() error {
	switch d {
	case DialectSQLite, DialectPostgres, DialectMySQL:
		return nil
	default:
		return fmt.Errorf("webhooks: unsupported dialect %q", string(d))
	}
}

// rebind rewrites `?` placeholders to `$1, $2, ...` for postgres and leaves the
// query alone otherwise. Question marks inside single-quoted literals are kept.
func (d Dialect) rebind(query string) string {
	if d != DialectPostgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, inQuote := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inQuote = !inQuote // '' inside a literal toggles twice, which is right
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// insertIgnore returns an INSERT statement for table and columns that does
// nothing, and affects no rows, when it would violate a unique key.
func (d Dialect) insertIgnore(table string, columns []string) string {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ")
	q := "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES (" + ph + ")"
	if d == DialectMySQL {
		// With the default CLIENT_FOUND_ROWS off, a no-op update reports 0 rows.
		return q + " ON DUPLICATE KEY UPDATE " + columns[0] + " = " + columns[0]
	}
	return q + " ON CONFLICT DO NOTHING"
}
