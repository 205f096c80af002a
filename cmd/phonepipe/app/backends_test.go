package app_test

import (
	"testing"

	"github.com/phonepipe/phonepipe/cmd/phonepipe/app"
	"github.com/phonepipe/phonepipe/internal/testenv"
)

// backendCase is one backend the end-to-end tests run on.
type backendCase struct {
	name string
	// config returns the backend's settings for one test, on a fresh
	// schema, database or cluster (skipping when its server is not
	// configured).
	config func(t *testing.T) app.Config
}

// backends lists every backend: the embedded one, the SQL servers, and
// Kafka with its projections in PostgreSQL or, without a DSN, in SQLite.
func backends() []backendCase {
	return []backendCase{
		{"sqlite", func(t *testing.T) app.Config { return app.Config{} }},
		{"postgres", func(t *testing.T) app.Config {
			return app.Config{Backend: app.BackendPostgres, PostgresDSN: testenv.Postgres(t)}
		}},
		{"mysql", func(t *testing.T) app.Config {
			return app.Config{Backend: app.BackendMySQL, MySQLDSN: testenv.MySQL(t)}
		}},
		{"kafka+postgres", func(t *testing.T) app.Config {
			return app.Config{Backend: app.BackendKafka, KafkaBrokers: testenv.Kafka(t), KafkaPartitions: 4,
				PostgresDSN: testenv.Postgres(t)}
		}},
		{"kafka+sqlite", func(t *testing.T) app.Config {
			return app.Config{Backend: app.BackendKafka, KafkaBrokers: testenv.Kafka(t), KafkaPartitions: 4}
		}},
	}
}

// forEachBackend runs test once per backend, as subtests named after it.
func forEachBackend(t *testing.T, test func(t *testing.T, cfg app.Config)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { test(t, b.config(t)) })
	}
}
