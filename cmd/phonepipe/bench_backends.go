package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for scratch schemas
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
)

// benchBackend is one backend prepared for a run: the serve flags that
// select it and what to undo afterwards.
type benchBackend struct {
	// label names the backend in the table, e.g. "kafka+postgres".
	label string
	// args are the serve flags selecting it.
	args []string
	// note says something the reader should know about this setup.
	note string
	// cleanup drops what was created for the run.
	cleanup func(context.Context) error
}

// benchBackendNames are the backends bench knows, in table order.
func benchBackendNames() []string {
	return []string{app.BackendSQLite, app.BackendPostgres, app.BackendMySQL, app.BackendKafka}
}

// benchUnavailable says why a backend cannot run with the given flags.
type benchUnavailable struct{ reason string }

func (e *benchUnavailable) Error() string { return e.reason }

// benchPrepareBackend creates a scratch space for one backend: a fresh schema
// on the PostgreSQL server, a fresh database on the MySQL server, a fresh
// in-process Kafka-protocol cluster. Embedded data goes to dataDir, which
// the caller creates fresh. It returns a *benchUnavailable when the
// flags do not name a server the backend needs.
func benchPrepareBackend(ctx context.Context, name string, o benchOptions) (benchBackend, error) {
	nothing := func(context.Context) error { return nil }
	switch name {
	case app.BackendSQLite:
		return benchBackend{label: name, args: []string{"--backend", name}, cleanup: nothing}, nil
	case app.BackendPostgres:
		if o.postgresDSN == "" {
			return benchBackend{}, &benchUnavailable{"needs --postgres-dsn"}
		}
		dsn, drop, err := benchScratchPostgres(ctx, o.postgresDSN)
		if err != nil {
			return benchBackend{}, err
		}
		return benchBackend{label: name, args: []string{"--backend", name, "--postgres-dsn", dsn}, cleanup: drop}, nil
	case app.BackendMySQL:
		if o.mysqlDSN == "" {
			return benchBackend{}, &benchUnavailable{"needs --mysql-dsn"}
		}
		dsn, drop, err := benchScratchMySQL(ctx, o.mysqlDSN)
		if err != nil {
			return benchBackend{}, err
		}
		return benchBackend{label: name, args: []string{"--backend", name, "--mysql-dsn", dsn}, cleanup: drop}, nil
	case app.BackendKafka:
		return benchPrepareKafka(ctx, o)
	default:
		return benchBackend{}, fmt.Errorf("unknown backend %q (%s)", name, strings.Join(benchBackendNames(), ", "))
	}
}

// benchPrepareKafka starts an in-process Kafka-protocol cluster (kfake) for the
// service; projections go to a fresh PostgreSQL schema when a server is
// named, else to the embedded database.
func benchPrepareKafka(ctx context.Context, o benchOptions) (benchBackend, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return benchBackend{}, fmt.Errorf("kafka: start in-process cluster: %w", err)
	}
	b := benchBackend{
		label: "kafka+sqlite",
		args:  []string{"--backend", app.BackendKafka, "--kafka-brokers", strings.Join(cluster.ListenAddrs(), ",")},
		note: "the broker is an in-process kfake cluster inside the bench process, " +
			"so it competes with the service for the same cores",
		cleanup: func(context.Context) error { cluster.Close(); return nil },
	}
	if o.postgresDSN == "" {
		b.note += "; projections in the embedded database (give --postgres-dsn for kafka+postgres)"
		return b, nil
	}
	dsn, drop, err := benchScratchPostgres(ctx, o.postgresDSN)
	if err != nil {
		cluster.Close()
		return benchBackend{}, fmt.Errorf("kafka: %w", err)
	}
	b.label = "kafka+postgres"
	b.args = append(b.args, "--postgres-dsn", dsn)
	b.cleanup = func(ctx context.Context) error { cluster.Close(); return drop(ctx) }
	return b, nil
}

// benchScratchName returns a fresh lower-case identifier for a schema or database.
func benchScratchName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "ppbench_" + hex.EncodeToString(b[:])
}

// benchScratchPostgres creates a fresh schema on the server of dsn and returns a
// DSN whose search_path is that schema, and a func that drops it.
func benchScratchPostgres(ctx context.Context, dsn string) (string, func(context.Context) error, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, fmt.Errorf("postgres: %w", err)
	}
	schema := benchScratchName()
	if err := benchExec(ctx, db, `CREATE SCHEMA `+schema); err != nil {
		_ = db.Close()
		return "", nil, fmt.Errorf("postgres: create scratch schema: %w", err)
	}
	drop := func(ctx context.Context) error {
		defer db.Close()
		if err := benchExec(ctx, db, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			return fmt.Errorf("postgres: drop scratch schema %s: %w", schema, err)
		}
		return nil
	}
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), drop, nil
	}
	return dsn + " search_path=" + schema, drop, nil
}

// benchScratchMySQL creates a fresh database on the server of dsn and returns a
// DSN naming it, and a func that drops it.
func benchScratchMySQL(ctx context.Context, dsn string) (string, func(context.Context) error, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("mysql: parse dsn: %w", err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return "", nil, fmt.Errorf("mysql: %w", err)
	}
	name := benchScratchName()
	if err := benchExec(ctx, db, `CREATE DATABASE `+name+` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`); err != nil {
		_ = db.Close()
		return "", nil, fmt.Errorf("mysql: create scratch database: %w", err)
	}
	drop := func(ctx context.Context) error {
		defer db.Close()
		if err := benchExec(ctx, db, `DROP DATABASE `+name); err != nil {
			return fmt.Errorf("mysql: drop scratch database %s: %w", name, err)
		}
		return nil
	}
	cfg.DBName = name
	return cfg.FormatDSN(), drop, nil
}

// benchExec runs one statement with a bounded wait.
func benchExec(ctx context.Context, db *sql.DB, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := db.ExecContext(ctx, stmt)
	return err
}
