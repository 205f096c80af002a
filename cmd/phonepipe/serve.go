package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/handlers"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	cfg, err := serveConfig(args, stderr, env)
	if err != nil {
		return err
	}
	if percent, ok := gcPercent(env, cfg.Backend); ok {
		debug.SetGCPercent(percent)
	}
	a, err := app.New(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "phonepipe %s serving %s — open %s/ · backend %s, data in %s · roles %s · Ctrl-C stops gracefully\n",
		buildVersion(), a.URL(), a.URL(), cfg.Backend, a.DataPath(), strings.Join(cfg.Roles, ","))
	err = a.Run(ctx)
	fmt.Fprintln(stdout, "phonepipe stopped")
	return err
}

// serveConfig parses the flags of serve (and their environment twins) into
// the configuration of the process.
func serveConfig(args []string, stderr io.Writer, env func(string) (string, bool)) (app.Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      app.Config
		roles    string
		logLevel string
		origins  string
		schedule string
	)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "where the embedded backend keeps its files")
	fs.StringVar(&cfg.Backend, "backend", "sqlite", "pub/sub and storage backend: sqlite (embedded), postgres, mysql or kafka")
	fs.StringVar(&cfg.PostgresDSN, "postgres-dsn", "", "PostgreSQL database (backend postgres; projections of backend kafka, else they stay in --data-dir)")
	fs.StringVar(&cfg.MySQLDSN, "mysql-dsn", "", "MySQL/MariaDB database (backend mysql), e.g. user:pass@tcp(host:3306)/db")
	fs.Func("kafka-brokers", "comma-separated host:port list of Kafka brokers (backend kafka)", func(s string) error {
		cfg.KafkaBrokers = splitList(s)
		return nil
	})
	fs.IntVar(&cfg.KafkaPartitions, "kafka-partitions", 12, "partitions of the Kafka topics phonepipe creates: the most processes of one role working at once")
	fs.StringVar(&roles, "roles", "all", "comma-separated subset of "+strings.Join(app.AllRoles(), ","))
	fs.StringVar(&cfg.DefaultRegion, "default-region", "", "region for rows that carry none and are not in international form")
	fs.StringVar(&cfg.APIKeys, "api-keys", "", "tenant:key,tenant:key; empty = auth off, one tenant named default")
	fs.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", 100<<20, "larger request bodies get 413")
	fs.IntVar(&cfg.MaxRows, "max-rows", 1_000_000, "most data rows one import may have (more gets 422)")
	fs.Float64Var(&cfg.ImportRate, "import-rate", 10, "POST /v1/imports allowed per second per tenant, on average (more gets 429); 0 = no limit")
	fs.IntVar(&cfg.ImportBurst, "import-burst", 20, "POST /v1/imports a tenant may make at once before --import-rate applies")
	fs.IntVar(&cfg.JobSize, "job-size", 500, "rows per validation job")
	fs.DurationVar(&cfg.ImportDeadline, "import-deadline", handlers.DefaultImportDeadline,
		"how long after acceptance an import may stay open; then rows without a result are PROCESSING_FAILED (detail: import deadline exceeded) and it completes; kept by the aggregate role; 0 = no deadline")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", 50*time.Millisecond, "how often idle SQL subscribers look for new messages")
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", "", "tenant signing secret, whsec_ + base64 (default: generated once per tenant and persisted)")
	fs.BoolVar(&cfg.WebhookAllowPrivate, "webhook-allow-private", false, "allow webhook targets on loopback/private addresses (development only)")
	fs.StringVar(&schedule, "webhook-schedule", "", "comma-separated webhook retry delays (default 0s,5s,5m,30m,2h,5h,10h,10h)")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated origins allowed to open live-progress WebSockets (default same-origin)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	addLookupFlags(fs, &cfg.Lookup)
	if err := parseWithEnv(fs, args, env); err != nil {
		return app.Config{}, err
	}
	var err error
	if cfg.Roles, err = app.ParseRoles(roles); err != nil {
		return app.Config{}, fmt.Errorf("--roles: %w", err)
	}
	if cfg.WebhookSchedule, err = parseDurations(schedule); err != nil {
		return app.Config{}, fmt.Errorf("--webhook-schedule: %w", err)
	}
	cfg.AllowedOrigins = splitList(origins)
	if cfg.Logger, err = newLogger(stderr, logLevel); err != nil {
		return app.Config{}, err
	}
	if cfg.DefaultRegion != "" {
		cfg.DefaultRegion = strings.ToUpper(cfg.DefaultRegion)
	}
	return cfg, nil
}

// newLogger logs JSON when stderr is not a terminal, text when it is.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseDurations parses a comma-separated list of durations.
func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, p := range splitList(s) {
		d, err := time.ParseDuration(p)
		if err != nil {
			return nil, err
		}
		if d < 0 {
			return nil, fmt.Errorf("negative delay %s", p)
		}
		out = append(out, d)
	}
	return out, nil
}
