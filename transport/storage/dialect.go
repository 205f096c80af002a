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
