package storage

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phonepipe/phonepipe/internal/periodic"
)

// Statistics keeps PostgreSQL's planner statistics of the tables in the
// database's schema up to date while they grow.
//
// PostgreSQL's autovacuum analyzes a table at most once per
// autovacuum_naptime (a minute by default), and not at all before then.
// phonepipe's tables go from empty to hundreds of thousands of rows within
// that minute, and without statistics the planner takes `tenant = ?` to
// match 0.5 % of a table: a lookup of a batch of numbers by their key
// (tenant, e164) is then planned as a scan of every row of the tenant, and
// an import slows down with the square of its size. Statistics analyzes a
// table as soon as its rows changed since the last analysis reach Growth
// times its live rows (and at least MinChanges), so the planner's idea of a
// table is never more than 1+Growth times off, at the price of about
// log(rows)/log(1+Growth) analyses per table.
type Statistics struct {
	DB *DB
	// Every is how often the change counters are read. Default 2s.
	Every time.Duration
	// Growth is the share of a table's live rows that must have changed
	// before it is analyzed again. Default 0.5.
	Growth float64
	// MinChanges is the fewest changed rows worth an analysis. Default
	// 1000.
	MinChanges int64
	Logger     *slog.Logger
}

func (s *Statistics) setDefaults() {
	if s.Every == 0 {
		s.Every = 2 * time.Second
	}
	if s.Growth == 0 {
		s.Growth = 0.5
	}
	if s.MinChanges == 0 {
		s.MinChanges = 1000
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
}

// statisticsLock is the first half of the advisory lock under which one
// process at a time analyzes a schema's tables (the second half is the
// schema's hash), so that the processes of a deployment do not repeat each
// other's work.
const statisticsLock = 0x7073 // "ps"

// Run refreshes the statistics every s.Every until ctx ends. It does
// nothing on databases other than PostgreSQL, whose own statistics keep up
// (InnoDB recalculates them in the background after 10 % of a table
// changed; SQLite's planner uses none).
func (s Statistics) Run(ctx context.Context) error {
	if s.DB.Dialect != Postgres {
		return nil
	}
	s.setDefaults()
	return periodic.Run(ctx, s.Every, func(ctx context.Context) error {
		_, err := s.Refresh(ctx)
		return err
	}, func(err error) {
		s.Logger.Warn("refresh planner statistics", "err", err)
	})
}

// Refresh analyzes the tables of the current schema that changed enough
// since their last analysis, and returns their names. If another process
// is analyzing, it returns none. Each table is analyzed in its own
// transaction: on PostgreSQL an open transaction hides the messages
// published after it began from every SQL subscriber, so none is held
// longer than one table's analysis.
func (s Statistics) Refresh(ctx context.Context) ([]string, error) {
	s.setDefaults()
	conn, err := s.DB.Write.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("refresh statistics: %w", err)
	}
	defer func() { _ = conn.Close() }()
	var mine bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, hashtext(current_schema()))`, statisticsLock).Scan(&mine); err != nil {
		return nil, fmt.Errorf("refresh statistics: %w", err)
	}
	if !mine {
		return nil, nil
	}
	defer func() {
		// A fresh context: the lock must go even when ctx has ended.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, statisticsLock)
	}()
	tables, err := s.changedTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if _, err := conn.ExecContext(ctx, `ANALYZE `+pgx.Identifier{t}.Sanitize()); err != nil {
			return nil, fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return tables, nil
}

// changedTables returns the tables of the current schema whose rows
// changed since their last analysis by s.Growth of their live rows and at
// least s.MinChanges.
func (s Statistics) changedTables(ctx context.Context, conn *sql.Conn) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT relname FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND n_mod_since_analyze >= GREATEST($1::bigint, $2::float8 * n_live_tup)
		ORDER BY relname`, s.MinChanges, s.Growth)
	if err != nil {
		return nil, fmt.Errorf("read change counters: %w", err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("read change counters: %w", err)
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read change counters: %w", err)
	}
	return tables, nil
}
