package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Shadow is a namespace beside a live database in which a replay rebuilds
// projections under their plain table names, so that projection code runs
// unchanged, and from which it then swaps them into the live database:
//
//   - SQLite: a database file <data-dir>/replay-<stamp>.db. The swap
//     transaction runs on a connection of that file with the live database
//     attached as "live".
//   - PostgreSQL: a schema phonepipe_replay_<stamp> in the live database,
//     the search_path of the shadow's pool; live tables are qualified with
//     the live pool's current schema.
//   - MySQL/MariaDB: a database <live>_replay_<stamp> on the same server;
//     live tables are qualified with the live database's name.
//
// Drop removes the namespace.
type Shadow struct {
	// DB is the shadow namespace: its unqualified tables are the shadow's.
	DB *DB
	// Name is the file, schema or database of the shadow.
	Name string

	live       *DB
	livePrefix string
}

// ShadowConfig says how to reach the live server for a second pool.
type ShadowConfig struct {
	// PostgresDSN is the live database's DSN (dialect postgres).
	PostgresDSN string
	// MySQLDSN is the live database's DSN (dialect mysql).
	MySQLDSN string
	// Now stamps the shadow's name; time.Now by default.
	Now func() time.Time
}

// sqliteAlias is the name of the live database attached to a SQLite swap
// connection.
const sqliteAlias = "live"

// OpenShadow creates an empty shadow namespace beside live. The caller
// creates its tables (it is a fresh database) and must Drop it.
func OpenShadow(ctx context.Context, live *DB, cfg ShadowConfig) (*Shadow, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("shadow name: %w", err)
	}
	stamp := cfg.Now().UTC().Format("20060102t150405") + "_" + hex.EncodeToString(rnd[:])
	switch live.Dialect {
	case SQLite:
		return openSQLiteShadow(live, stamp)
	case Postgres:
		return openPostgresShadow(ctx, live, cfg.PostgresDSN, stamp)
	case MySQL:
		return openMySQLShadow(ctx, live, cfg.MySQLDSN, stamp)
	default:
		return nil, fmt.Errorf("shadow: unknown dialect %q", live.Dialect)
	}
}

func openSQLiteShadow(live *DB, stamp string) (*Shadow, error) {
	if live.Path == "" {
		return nil, errors.New("shadow: the live SQLite database has no file")
	}
	path := filepath.Join(filepath.Dir(live.Path), "replay-"+stamp+".db")
	w, err := sql.Open("sqlite", shadowDSN(path))
	if err == nil {
		// One connection: a replay writes the shadow from one goroutine,
		// and the pragmas below hold per connection.
		w.SetMaxOpenConns(1)
		err = w.PingContext(context.Background())
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open shadow %s: %w", path, err), closeIfOpen(w))
	}
	return &Shadow{DB: &DB{Write: w, Read: w, Dialect: SQLite, Path: path}, Name: path, live: live,
		livePrefix: sqliteAlias + "."}, nil
}

// shadowDSN configures the connection of an embedded shadow. The shadow
// is thrown away after the swap and rebuilt from the log if anything goes
// wrong, so it needs no durability: no fsync, the rollback journal in
// memory. Transactions begin IMMEDIATE (the swap's lock on the attached
// live database depends on it).
func shadowDSN(path string) string {
	return path + "?" + url.Values{
		"_pragma": {
			"busy_timeout(10000)",
			"journal_mode(MEMORY)",
			"synchronous(OFF)",
			"temp_store(MEMORY)",
			"cache_size(-65536)",
		},
		"_txlock": {"immediate"},
	}.Encode()
}

func closeIfOpen(db *sql.DB) error {
	if db == nil {
		return nil
	}
	return db.Close()
}

func openPostgresShadow(ctx context.Context, live *DB, dsn, stamp string) (*Shadow, error) {
	if dsn == "" {
		return nil, errors.New("shadow: the PostgreSQL DSN is missing")
	}
	var liveSchema string
	if err := live.Read.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&liveSchema); err != nil {
		return nil, fmt.Errorf("shadow: current schema: %w", err)
	}
	name := "phonepipe_replay_" + stamp
	if _, err := live.Write.ExecContext(ctx, `CREATE SCHEMA `+QuoteIdent(Postgres, name)); err != nil {
		return nil, fmt.Errorf("create shadow schema %s: %w", name, err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err == nil {
		cfg.RuntimeParams["search_path"] = name
		var db *DB
		if db, err = openServer(ctx, stdlib.OpenDB(*cfg), Postgres); err == nil {
			return &Shadow{DB: db, Name: name, live: live, livePrefix: QuoteIdent(Postgres, liveSchema) + "."}, nil
		}
	}
	_, dropErr := live.Write.ExecContext(context.WithoutCancel(ctx), `DROP SCHEMA `+QuoteIdent(Postgres, name)+` CASCADE`)
	return nil, errors.Join(fmt.Errorf("open shadow schema %s: %w", name, err), dropErr)
}

func openMySQLShadow(ctx context.Context, live *DB, dsn, stamp string) (*Shadow, error) {
	if dsn == "" {
		return nil, errors.New("shadow: the MySQL DSN is missing")
	}
	var liveDB string
	if err := live.Read.QueryRowContext(ctx, `SELECT DATABASE()`).Scan(&liveDB); err != nil {
		return nil, fmt.Errorf("shadow: current database: %w", err)
	}
	// MySQL names are at most 64 characters.
	name := liveDB
	if suffix := "_replay_" + stamp; len(name)+len(suffix) > 64 {
		name = name[:64-len(suffix)] + suffix
	} else {
		name += suffix
	}
	if _, err := live.Write.ExecContext(ctx, `CREATE DATABASE `+QuoteIdent(MySQL, name)+
		` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`); err != nil {
		return nil, fmt.Errorf("create shadow database %s: %w", name, err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err == nil {
		cfg.DBName = name
		cfg.ParseTime = true
		cfg.MultiStatements = false
		var conn driver.Connector
		if conn, err = mysql.NewConnector(cfg); err == nil {
			var db *DB
			if db, err = openServer(ctx, sql.OpenDB(conn), MySQL); err == nil {
				return &Shadow{DB: db, Name: name, live: live, livePrefix: QuoteIdent(MySQL, liveDB) + "."}, nil
			}
		}
	}
	_, dropErr := live.Write.ExecContext(context.WithoutCancel(ctx), `DROP DATABASE `+QuoteIdent(MySQL, name))
	return nil, errors.Join(fmt.Errorf("open shadow database %s: %w", name, err), dropErr)
}

// LivePrefix qualifies a live table in a swap transaction: LivePrefix() +
// "numbers" names the live numbers table, a plain "numbers" the shadow's.
func (s *Shadow) LivePrefix() string { return s.livePrefix }

// swapBusyWait bounds how long BeginSwap retries while another process
// holds the embedded database's write lock.
const swapBusyWait = 2 * time.Minute

// BeginSwap begins the swap transaction, on a connection whose unqualified
// tables are the shadow's and which reaches the live tables through
// LivePrefix. On SQLite the transaction holds the write lock of both
// databases from its start, so no live writer advances until it ends; on
// the server databases the caller takes the locks it needs. end must be
// called once the transaction is over (committed or rolled back).
func (s *Shadow) BeginSwap(ctx context.Context) (tx *sql.Tx, end func() error, err error) {
	if s.DB.Dialect != SQLite {
		tx, err := s.DB.Write.BeginTx(ctx, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("begin swap: %w", err)
		}
		return tx, func() error { return nil }, nil
	}
	conn, err := s.DB.Write.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("swap connection: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+sqliteAlias, s.live.Path); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("attach %s: %w", s.live.Path, err), conn.Close())
	}
	end = func() error {
		_, err := conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE `+sqliteAlias)
		if err != nil {
			// Never hand a connection with the live database attached
			// back to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return errors.Join(err, conn.Close())
	}
	deadline := time.Now().Add(swapBusyWait)
	for {
		// BEGIN IMMEDIATE (the pool's _txlock) takes the write lock of
		// every attached database.
		tx, err = conn.BeginTx(ctx, nil)
		if err == nil {
			return tx, end, nil
		}
		if !isSQLiteBusy(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, nil, errors.Join(fmt.Errorf("begin swap: %w", err), end())
		}
	}
}

// LockLive keeps every other writer off the live tables for the rest of
// the swap transaction tx, letting readers read. On SQLite the transaction
// already holds the database's write lock; on PostgreSQL it takes LOCK
// TABLE … IN EXCLUSIVE MODE; on MySQL it does nothing (a projection has
// one writer, its consumer group, held through its offsets row).
func (s *Shadow) LockLive(ctx context.Context, tx *sql.Tx, tables []string) error {
	if s.DB.Dialect != Postgres || len(tables) == 0 {
		return nil
	}
	qualified := make([]string, len(tables))
	for i, t := range tables {
		qualified[i] = s.livePrefix + QuoteIdent(Postgres, t)
	}
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+strings.Join(qualified, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock live tables: %w", err)
	}
	return nil
}

// isSQLiteBusy recognises SQLITE_BUSY and SQLITE_LOCKED.
func isSQLiteBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") ||
		strings.Contains(msg, "SQLITE_LOCKED")
}

// Drop closes the shadow's pool and removes the namespace.
func (s *Shadow) Drop(ctx context.Context) error {
	closeErr := s.DB.Close()
	switch s.DB.Dialect {
	case SQLite:
		var errs []error
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Remove(s.Name + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		return errors.Join(closeErr, errors.Join(errs...))
	case Postgres:
		_, err := s.live.Write.ExecContext(ctx, `DROP SCHEMA `+QuoteIdent(Postgres, s.Name)+` CASCADE`)
		return errors.Join(closeErr, err)
	default:
		_, err := s.live.Write.ExecContext(ctx, `DROP DATABASE `+QuoteIdent(MySQL, s.Name))
		return errors.Join(closeErr, err)
	}
}

// Absorb copies every row of tables from other, a shadow beside the same
// live database whose rows are disjoint from s's, into s, in one
// transaction. Replay builds partitions in parallel and absorbs them
// before the swap.
func (s *Shadow) Absorb(ctx context.Context, other *Shadow, tables []string) (err error) {
	var (
		q interface {
			BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
		}
		prefix string
	)
	switch s.DB.Dialect {
	case SQLite:
		conn, err := s.DB.Write.Conn(ctx)
		if err != nil {
			return fmt.Errorf("absorb %s: %w", other.Name, err)
		}
		defer func() { err = errors.Join(err, conn.Close()) }()
		const alias = "part"
		if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+alias, other.Name); err != nil {
			return fmt.Errorf("absorb %s: %w", other.Name, err)
		}
		defer func() {
			if _, derr := conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE `+alias); derr != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
				err = errors.Join(err, fmt.Errorf("detach %s: %w", other.Name, derr))
			}
		}()
		q, prefix = conn, alias+"."
	default:
		q, prefix = s.DB.Write, QuoteIdent(s.DB.Dialect, other.Name)+"."
	}
	tx, err := q.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("absorb %s: %w", other.Name, err)
	}
	for _, t := range tables {
		cols, err := TableColumns(ctx, tx, t)
		if err != nil {
			return errors.Join(err, tx.Rollback())
		}
		quoted := make([]string, len(cols))
		for i, c := range cols {
			quoted[i] = QuoteIdent(s.DB.Dialect, c)
		}
		list := strings.Join(quoted, ", ")
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+t+` (`+list+`) SELECT `+list+` FROM `+prefix+t); err != nil {
			return errors.Join(fmt.Errorf("absorb %s of %s: %w", t, other.Name, err), tx.Rollback())
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("absorb %s: %w", other.Name, err)
	}
	return nil
}

// TableColumns lists the columns of a table (a name as the dialect writes
// it, qualified if need be).
func TableColumns(ctx context.Context, q Querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT * FROM `+table+` WHERE 1 = 0`)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	return cols, rows.Err()
}

// QuoteIdent quotes an identifier for the dialect.
func QuoteIdent(d Dialect, name string) string {
	if d == MySQL {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
