package webhooks

import (
	"strings"
	"testing"
)

func TestRebind(t *testing.T) {
	q := `SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)`
	if got := DialectSQLite.rebind(q); got != q {
		t.Fatalf("sqlite rebind changed the query: %s", got)
	}
	if got := DialectMySQL.rebind(q); got != q {
		t.Fatalf("mysql rebind changed the query: %s", got)
	}
	want := `SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)`
	if got := DialectPostgres.rebind(q); got != want {
		t.Fatalf("postgres rebind = %s, want %s", got, want)
	}
}

func TestInsertIgnore(t *testing.T) {
	cols := []string{"tenant", "secret"}
	for d, want := range map[Dialect]string{
		DialectSQLite:   "INSERT INTO x (tenant, secret) VALUES (?, ?) ON CONFLICT DO NOTHING",
		DialectPostgres: "INSERT INTO x (tenant, secret) VALUES (?, ?) ON CONFLICT DO NOTHING",
		DialectMySQL:    "INSERT INTO x (tenant, secret) VALUES (?, ?) ON DUPLICATE KEY UPDATE tenant = tenant",
	} {
		if got := d.insertIgnore("x", cols); got != want {
			t.Errorf("%s: %s, want %s", d, got, want)
		}
	}
}

func TestDDL(t *testing.T) {
	for _, d := range []Dialect{DialectSQLite, DialectPostgres, DialectMySQL} {
		stmts := strings.Join(d.ddl(), ";\n")
		for _, table := range []string{"webhook_subscriptions", "tenant_secrets", "webhook_events", "webhook_deliveries", "webhook_attempts"} {
			if !strings.Contains(stmts, "CREATE TABLE IF NOT EXISTS "+table+" (") {
				t.Errorf("%s: no table %s", d, table)
			}
		}
		if hasCreateIndex := strings.Contains(stmts, "CREATE INDEX"); hasCreateIndex == (d == DialectMySQL) {
			t.Errorf("%s: CREATE INDEX present = %v", d, hasCreateIndex)
		}
	}
	if err := Dialect("oracle").validate(); err == nil {
		t.Error("unknown dialect accepted")
	}
}
