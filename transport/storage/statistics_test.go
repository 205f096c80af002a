package storage_test

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phonepipe/phonepipe/internal/testenv"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// TestStatisticsFollowATableThatGrows fills a table keyed like the
// projections' (tenant, e164) faster than autovacuum looks at it, and checks
// that Statistics analyzes it when, and only when, it has grown enough, and
// that the analysis turns the plan of a batch lookup from a scan of the
// tenant's every row into index probes.
func TestStatisticsFollowATableThatGrows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := storage.OpenPostgres(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db.Write, `CREATE TABLE grows (tenant VARCHAR(64) NOT NULL, e164 VARCHAR(32) NOT NULL,
		version BIGINT NOT NULL, PRIMARY KEY (tenant, e164)) WITH (autovacuum_enabled = false)`)
	fill := func(from, to int) {
		mustExec(t, db.Write, `INSERT INTO grows SELECT 'default', '+1' || (2000000000 + i)::text, 1
			FROM generate_series($1::int, $2::int) i`, from, to)
	}
	fill(1, 60000)
	stats := storage.Statistics{DB: db}

	// A lookup of 200 numbers, as the projector makes one.
	var in []string
	for i := 1; i <= 200; i++ {
		in = append(in, "'+1"+strconv.Itoa(2000000000+i*293)+"'")
	}
	lookup := `EXPLAIN SELECT e164, version FROM grows WHERE tenant = 'default' AND e164 IN (` + strings.Join(in, ",") + `)`
	if plan := explain(t, db.Write, lookup); !strings.Contains(plan, "Filter: ((e164)::text = ANY") {
		t.Fatalf("without statistics the lookup should filter the tenant's rows (the plan this type prevents), got:\n%s", plan)
	}

	analyzed := refreshUntil(t, ctx, stats, "grows")
	if !slices.Contains(analyzed, "grows") {
		t.Fatalf("60,000 new rows: analyzed %v, want grows", analyzed)
	}
	if plan := explain(t, db.Write, lookup); !strings.Contains(plan, "Index Cond: (((tenant)::text = 'default'::text) AND ((e164)::text = ANY") {
		t.Fatalf("with statistics the lookup should probe the key, got:\n%s", plan)
	}

	// 10,000 more rows are a sixth of the table: below Growth (0.5).
	fill(60001, 70000)
	waitForCounter(t, ctx, db.Write, "grows", 10000)
	if got, err := stats.Refresh(ctx); err != nil || slices.Contains(got, "grows") {
		t.Fatalf("after 10,000 of 70,000 rows changed: analyzed %v (err %v), want not grows", got, err)
	}
	// 60,000 more: 70,000 changed rows of 130,000 pass Growth.
	fill(70001, 130000)
	if got := refreshUntil(t, ctx, stats, "grows"); !slices.Contains(got, "grows") {
		t.Fatalf("after 70,000 of 130,000 rows changed: analyzed %v, want grows", got)
	}

	// Another process analyzing the schema: this one leaves it alone.
	fill(130001, 300000)
	waitForCounter(t, ctx, db.Write, "grows", 170000)
	other, err := db.Write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, `SELECT pg_advisory_lock(x'7073'::int, hashtext(current_schema()))`); err != nil {
		t.Fatal(err)
	}
	if got, err := stats.Refresh(ctx); err != nil || len(got) != 0 {
		t.Fatalf("while another process holds the lock: analyzed %v (err %v), want nothing", got, err)
	}
	if _, err := other.ExecContext(ctx, `SELECT pg_advisory_unlock(x'7073'::int, hashtext(current_schema()))`); err != nil {
		t.Fatal(err)
	}
	if got, err := stats.Refresh(ctx); err != nil || !slices.Contains(got, "grows") {
		t.Fatalf("after the other process let go: analyzed %v (err %v), want grows", got, err)
	}
}

// TestStatisticsRunDoesNothingOnSQLite: the embedded database needs no
// statistics, and Run returns at once.
func TestStatisticsRunDoesNothingOnSQLite(t *testing.T) {
	db, err := storage.OpenSQLite(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	done := make(chan error, 1)
	go func() { done <- storage.Statistics{DB: db}.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run on SQLite did not return")
	}
}

// refreshUntil refreshes until table is analyzed, for at most 15 seconds:
// PostgreSQL publishes a backend's change counters up to a second after
// its commit.
func refreshUntil(t *testing.T, ctx context.Context, s storage.Statistics, table string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		got, err := s.Refresh(ctx)
		if err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		if slices.Contains(got, table) || ctx.Err() != nil {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForCounter waits until table's change counter shows at least n rows.
func waitForCounter(t *testing.T, ctx context.Context, db *sql.DB, table string, n int64) {
	t.Helper()
	for {
		var got int64
		err := db.QueryRowContext(ctx, `SELECT n_mod_since_analyze FROM pg_stat_user_tables
			WHERE schemaname = current_schema() AND relname = $1`, table).Scan(&got)
		if err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("change counter of %s stayed at %d, want %d", table, got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func explain(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		b.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
