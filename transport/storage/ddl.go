package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// mysqlTableOptions make every table InnoDB with a binary collation: ids,
// tenants and stream ids compare byte for byte, as on the other databases
// (MySQL's default collations ignore case).
const mysqlTableOptions = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

// createIndexIfNotExists matches the one DDL form MySQL lacks.
var createIndexIfNotExists = regexp.MustCompile(`(?is)^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+ON\s+(\w+)\s*(\(.*\))\s*$`)

// execDDL runs one portable DDL statement. Statements are written for SQLite
// and PostgreSQL; on MySQL, CREATE TABLE gets mysqlTableOptions and
// CREATE [UNIQUE] INDEX IF NOT EXISTS (MariaDB has it, MySQL does not)
// becomes a look-up in information_schema and a plain CREATE INDEX.
func (d *DB) execDDL(ctx context.Context, stmt string) error {
	if d.Dialect != MySQL {
		_, err := d.Write.ExecContext(ctx, stmt)
		return err
	}
	if m := createIndexIfNotExists.FindStringSubmatch(stmt); m != nil {
		return d.createMySQLIndex(ctx, m[1] != "", m[2], m[3], m[4])
	}
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(stmt)), "CREATE TABLE") {
		stmt += mysqlTableOptions
	}
	_, err := d.Write.ExecContext(ctx, stmt)
	return err
}

func (d *DB) createMySQLIndex(ctx context.Context, unique bool, name, table, columns string) error {
	var n int
	err := d.Write.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.statistics
		WHERE table_schema = DATABASE() AND table_name = ? AND index_name = ?`, table, name).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("look up index %s: %w", name, err)
	}
	if n > 0 {
		return nil
	}
	kind := "INDEX"
	if unique {
		kind = "UNIQUE INDEX"
	}
	_, err = d.Write.ExecContext(ctx, "CREATE "+kind+" "+name+" ON "+table+" "+columns)
	var my *mysql.MySQLError
	if errors.As(err, &my) && my.Number == 1061 { // ER_DUP_KEYNAME: another process was faster
		return nil
	}
	return err
}
