package storage_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// shadowCase opens a live database of one dialect.
type shadowCase struct {
	name string
	open func(t *testing.T) (*storage.DB, storage.ShadowConfig)
}

func shadowCases() []shadowCase {
	return []shadowCase{
		{"sqlite", func(t *testing.T) (*storage.DB, storage.ShadowConfig) {
			db, err := storage.OpenSQLite(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return db, storage.ShadowConfig{}
		}},
		{"postgres", func(t *testing.T) (*storage.DB, storage.ShadowConfig) {
			dsn := testenv.Postgres(t)
			db, err := storage.OpenPostgres(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			return db, storage.ShadowConfig{PostgresDSN: dsn}
		}},
		{"mysql", func(t *testing.T) (*storage.DB, storage.ShadowConfig) {
			dsn := testenv.MySQL(t)
			db, err := storage.OpenMySQL(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			return db, storage.ShadowConfig{MySQLDSN: dsn}
		}},
	}
}

func count(t *testing.T, q storage.Querier, query string) int {
	t.Helper()
	var n int
	if err := q.QueryRowContext(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestShadowNamespaces checks that in a swap transaction unqualified names
// are the shadow's and LivePrefix reaches the live tables, and that Drop
// removes the shadow.
func TestShadowNamespaces(t *testing.T) {
	for _, c := range shadowCases() {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			live, cfg := c.open(t)
			defer live.Close()
			if err := live.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			sh, err := storage.OpenShadow(ctx, live, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := sh.DB.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			tx, end, err := sh.BeginSwap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			d := sh.DB.Dialect
			if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO handled_messages (handler, msg_key) VALUES (?, ?)`), "h", "shadow"); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO `+sh.LivePrefix()+`handled_messages (handler, msg_key)
				SELECT handler, 'live' FROM handled_messages`)); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := end(); err != nil {
				t.Fatal(err)
			}
			var key string
			if err := live.Read.QueryRowContext(ctx, `SELECT msg_key FROM handled_messages`).Scan(&key); err != nil || key != "live" {
				t.Fatalf("live handled_messages: %q, %v; want the one row the swap copied", key, err)
			}
			if n := count(t, sh.DB.Read, `SELECT COUNT(*) FROM handled_messages`); n != 1 {
				t.Fatalf("shadow has %d rows, want 1", n)
			}
			if err := sh.Drop(ctx); err != nil {
				t.Fatal(err)
			}
			switch d {
			case storage.SQLite:
				if _, err := os.Stat(sh.Name); !os.IsNotExist(err) {
					t.Fatalf("shadow file %s still there: %v", sh.Name, err)
				}
			case storage.Postgres:
				if n := count(t, live.Read, `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '`+sh.Name+`'`); n != 0 {
					t.Fatalf("shadow schema %s still there", sh.Name)
				}
			case storage.MySQL:
				if n := count(t, live.Read, `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '`+sh.Name+`'`); n != 0 {
					t.Fatalf("shadow database %s still there", sh.Name)
				}
			}
		})
	}
}

// TestShadowSwapHoldsTheLiveWriters checks that while a swap transaction
// is open no other connection writes the live tables, and readers read.
func TestShadowSwapHoldsTheLiveWriters(t *testing.T) {
	for _, c := range shadowCases()[:2] {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			live, cfg := c.open(t)
			defer live.Close()
			if err := live.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			sh, err := storage.OpenShadow(ctx, live, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sh.Drop(ctx) }()
			tx, end, err := sh.BeginSwap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := sh.LockLive(ctx, tx, []string{"stream_heads"}); err != nil {
				t.Fatal(err)
			}
			var other *sql.DB
			if live.Dialect == storage.SQLite {
				other, err = sql.Open("sqlite", live.Path+"?_pragma=busy_timeout(200)")
			} else {
				other, err = sql.Open("pgx", cfg.PostgresDSN)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			conn, err := other.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if live.Dialect == storage.Postgres {
				if _, err := conn.ExecContext(ctx, `SET lock_timeout = '200ms'`); err != nil {
					t.Fatal(err)
				}
			}
			if n := count(t, conn, `SELECT COUNT(*) FROM stream_heads`); n != 0 {
				t.Fatalf("%d stream heads", n)
			}
			_, err = conn.ExecContext(ctx, live.Dialect.Rebind(`INSERT INTO stream_heads (stream_id, version) VALUES (?, 1)`), "s")
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "lock") {
				t.Fatalf("a live write during the swap: %v, want a lock timeout", err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := end(); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, live.Dialect.Rebind(`INSERT INTO stream_heads (stream_id, version) VALUES (?, 1)`), "s"); err != nil {
				t.Fatalf("a live write after the swap: %v", err)
			}
		})
	}
}

// TestShadowSQLiteFileBesideTheLiveDatabase checks where the embedded
// shadow lives.
func TestShadowSQLiteFileBesideTheLiveDatabase(t *testing.T) {
	dir := t.TempDir()
	live, err := storage.OpenSQLite(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	sh, err := storage.OpenShadow(context.Background(), live, storage.ShadowConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sh.Drop(context.Background()) }()
	if filepath.Dir(sh.Name) != dir || !strings.HasPrefix(filepath.Base(sh.Name), "replay-") {
		t.Fatalf("shadow at %s, want %s/replay-*.db", sh.Name, dir)
	}
}
