package projections

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/transport/storage"
)

// Checksum is the SHA-256 of a projection's canonical content.
type Checksum struct {
	Projection string
	SHA256     string
	// Rows counts the rows hashed.
	Rows int64
}

// String is the line `phonepipe projections checksum` prints: NAME SHA256.
func (c Checksum) String() string { return c.Projection + " " + c.SHA256 }

// Checksums computes the checksum of every projection of catalog on db.
func Checksums(ctx context.Context, db *storage.DB, catalog []Projection) ([]Checksum, error) {
	out := make([]Checksum, 0, len(catalog))
	for _, p := range catalog {
		c, err := ChecksumOf(ctx, db, p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ChecksumOf hashes the canonical content of a projection: for each of its
// tables that is not transient, in the order of the catalog, a header line
// with the table's name and its hashed columns (sorted by name, excluded
// columns left out), then one line per row in primary-key order (byte
// order for text, numeric order for numbers, on every database), each row
// a JSON array of its values with integers as numbers and text as strings.
// The result is the same for the same content on SQLite, PostgreSQL and
// MySQL, and depends on nothing but the content.
func ChecksumOf(ctx context.Context, db *storage.DB, p Projection) (Checksum, error) {
	h := sha256.New()
	var n int64
	for _, t := range p.Tables {
		if t.Transient {
			continue
		}
		rows, err := hashTable(ctx, db, t, h)
		if err != nil {
			return Checksum{}, fmt.Errorf("checksum of %s: %w", p.Name, err)
		}
		n += rows
	}
	return Checksum{Projection: p.Name, SHA256: hex.EncodeToString(h.Sum(nil)), Rows: n}, nil
}

// hashTable writes one table's canonical content into h.
func hashTable(ctx context.Context, db *storage.DB, t TableSpec, h hash.Hash) (int64, error) {
	all, err := columnsOf(ctx, db.Read, t.Name)
	if err != nil {
		return 0, err
	}
	var cols []string
	for _, c := range all {
		c = strings.ToLower(c)
		if !slices.Contains(t.Exclude, c) {
			cols = append(cols, c)
		}
	}
	slices.Sort(cols)
	order := make([]string, len(t.Key))
	for i, k := range t.Key {
		order[i] = storage.QuoteIdent(db.Dialect, k.Name)
		if !k.Numeric && db.Dialect == storage.Postgres {
			order[i] += ` COLLATE "C"`
		}
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = storage.QuoteIdent(db.Dialect, c)
	}
	fmt.Fprintf(h, "# %s %s\n", t.Name, strings.Join(cols, ","))
	rows, err := db.Read.QueryContext(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM `+t.Name+
		` ORDER BY `+strings.Join(order, ", "))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", t.Name, err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", t.Name, err)
	}
	integer := make([]bool, len(types))
	for i, ct := range types {
		integer[i] = strings.Contains(strings.ToUpper(ct.DatabaseTypeName()), "INT")
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	line := make([]any, len(cols))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("read %s: %w", t.Name, err)
		}
		for i, v := range vals {
			if line[i], err = canonical(v, integer[i]); err != nil {
				return 0, fmt.Errorf("read %s.%s: %w", t.Name, cols[i], err)
			}
		}
		b, err := json.Marshal(line)
		if err != nil {
			return 0, fmt.Errorf("encode row of %s: %w", t.Name, err)
		}
		h.Write(append(b, '\n'))
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", t.Name, err)
	}
	return n, nil
}

// canonical maps a driver value to its canonical form: integers (whatever
// the driver returns for an integer column) as int64, text and bytes as
// strings, times as RFC 3339 in UTC, NULL as nil.
func canonical(v any, integer bool) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		if integer {
			return strconv.ParseInt(string(x), 10, 64)
		}
		return string(x), nil
	case string:
		if integer {
			return strconv.ParseInt(x, 10, 64)
		}
		return x, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case int32:
		return int64(x), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	default:
		return x, nil
	}
}
