package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Pool sizes of server databases. Every SQL subscriber holds one connection
// for the length of its transaction and the HTTP API needs a few more; the
// bound keeps several processes well below a server's default limit (100
// connections on PostgreSQL, 151 on MySQL).
const (
	serverMaxOpenConns = 20
	serverMaxIdleConns = 8
	serverConnLifetime = 30 * time.Minute
)

// OpenPostgres opens a PostgreSQL database through the pgx driver. dsn is a
// pgx connection string or URL; runtime parameters such as search_path are
// passed on to the server, which is how a schema other than public is used.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse postgres dsn: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	return openServer(ctx, db, Postgres)
}

// OpenMySQL opens a MySQL or MariaDB database through go-sql-driver/mysql.
// Whatever dsn says, times are parsed (parseTime) and multi-statement
// queries stay off.
func OpenMySQL(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.MultiStatements = false
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql connector: %w", err)
	}
	return openServer(ctx, sql.OpenDB(conn), MySQL)
}

// openServer configures the pool of a server database and checks that it
// answers. Reads and writes share the pool.
func openServer(ctx context.Context, db *sql.DB, d Dialect) (*DB, error) {
	db.SetMaxOpenConns(serverMaxOpenConns)
	db.SetMaxIdleConns(serverMaxIdleConns)
	db.SetConnMaxLifetime(serverConnLifetime)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s: %w", d, err)
	}
	return &DB{Write: db, Read: db, Dialect: d}, nil
}
