package testenv

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Environment variables naming the test servers.
const (
	PostgresEnv = "PHONEPIPE_TEST_POSTGRES_DSN"
	MySQLEnv    = "PHONEPIPE_TEST_MYSQL_DSN"
)

// uniqueName returns a fresh lower-case identifier with prefix.
func uniqueName(prefix string) string {
	return prefix + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
}

// serverLockKey is the advisory lock (pg_advisory_lock) by which the tests
// of all packages share the PostgreSQL server, or one of them has it alone
// (see PostgresAlone).
const serverLockKey = 0x70707465 // "ppte"

// Postgres returns a DSN of the server in $PHONEPIPE_TEST_POSTGRES_DSN whose
// search_path is a new, empty schema; the schema is dropped when the test
// ends. The test is skipped when the variable is not set. It shares the
// server with the other tests, and waits while a PostgresAlone test runs.
func Postgres(t testing.TB) string {
	t.Helper()
	return postgres(t, "pg_advisory_lock_shared")
}

// PostgresAlone is Postgres for a test that must have the server to itself:
// it waits until the Postgres tests running in other packages have ended,
// and those that start meanwhile wait for it. watermill-sql's PostgreSQL
// adapter delivers a message only once every transaction older than it, in
// any database of the server, has ended, so a test that times deliveries
// stalls while another package's handler holds a transaction open (seconds,
// under the race detector on a loaded machine).
func PostgresAlone(t testing.TB) string {
	t.Helper()
	return postgres(t, "pg_advisory_lock")
}

func postgres(t testing.TB, lockFunc string) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run this test against PostgreSQL", PostgresEnv)
	}
	schema := uniqueName("pp_")
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	// The lock is held by a session of its own until the test ends (a
	// session that ends, say the test binary killed, releases it too).
	lockCtx, cancelLock := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelLock()
	lock, err := admin.Conn(lockCtx)
	if err != nil {
		_ = admin.Close()
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	if _, err := lock.ExecContext(lockCtx, `SELECT `+lockFunc+`($1)`, serverLockKey); err != nil {
		_ = lock.Close()
		_ = admin.Close()
		t.Fatalf("take the test lock of %s (%s): %v", PostgresEnv, lockFunc, err)
	}
	unlock := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := lock.ExecContext(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
			t.Logf("release the test lock of %s: %v", PostgresEnv, err)
		}
		_ = lock.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		unlock()
		_ = admin.Close()
		t.Fatalf("create schema on %s: %v", PostgresEnv, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		unlock()
		_ = admin.Close()
	})
	return withSearchPath(base, schema)
}

// withSearchPath adds a search_path run-time parameter to a pgx DSN (URL or
// key=value form).
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// MySQL returns a DSN of the server in $PHONEPIPE_TEST_MYSQL_DSN naming a
// new, empty database, dropped when the test ends. The test is skipped
// when the variable is not set.
func MySQL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(MySQLEnv)
	if base == "" {
		t.Skipf("set %s (e.g. root@tcp(127.0.0.1:3306)/test?parseTime=true) to run this test against MySQL/MariaDB", MySQLEnv)
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse %s: %v", MySQLEnv, err)
	}
	name := uniqueName("pp_")
	admin, err := sql.Open("mysql", base)
	if err != nil {
		t.Fatalf("open %s: %v", MySQLEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`); err != nil {
		_ = admin.Close()
		t.Fatalf("create database on %s: %v", MySQLEnv, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE `+name); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
