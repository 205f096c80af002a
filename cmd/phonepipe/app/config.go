package app

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/domain/phone"
)

// Role names, as given to --roles.
const (
	RoleAPI       = "api"
	RoleSplit     = "split"
	RoleValidate  = "validate"
	RoleLookup    = "lookup"
	RoleProject   = "project"
	RoleAggregate = "aggregate"
	RoleNotify    = "notify"
)

// AllRoles lists every role in pipeline order.
func AllRoles() []string {
	return []string{RoleAPI, RoleSplit, RoleValidate, RoleLookup, RoleProject, RoleAggregate, RoleNotify}
}

// Config is everything one process needs to know.
type Config struct {
	Addr           string
	DataDir        string
	Backend        string
	Roles          []string
	DefaultRegion  string
	APIKeys        string
	MaxUploadBytes int64
	MaxRows        int
	// ImportRate and ImportBurst are the per-tenant token bucket of
	// POST /v1/imports (requests per second, burst); rate 0 = no limit.
	ImportRate   float64
	ImportBurst  int
	JobSize      int
	PollInterval time.Duration
	// WebhookSecret signs per-import webhooks; empty means one generated
	// per tenant and persisted.
	WebhookSecret string
	// WebhookAllowPrivate lets webhooks reach loopback/private addresses.
	WebhookAllowPrivate bool
	// WebhookSchedule is the retry schedule (default Standard Webhooks').
	WebhookSchedule []time.Duration
	// AllowedOrigins may open live-progress WebSockets; empty = same origin.
	AllowedOrigins []string
	// MaxRetries bounds retries of a failing message before the poison
	// queue (default 5).
	MaxRetries int
	// PostgresDSN is the database of the postgres backend, and of the
	// projections with the kafka backend (else they stay in DataDir).
	PostgresDSN string
	// MySQLDSN is the database of the mysql backend.
	MySQLDSN string
	// KafkaBrokers are the bootstrap brokers (host:port) of the kafka backend.
	KafkaBrokers []string
	// KafkaPartitions is the partition count of the topics the kafka
	// backend creates: the most processes of one role that work at once.
	// Default 12.
	KafkaPartitions int
	// KafkaSessionTimeout is how long a dead process keeps its partitions.
	// Default 10s.
	KafkaSessionTimeout time.Duration
	// ImportDeadline is how long after its acceptance an import may stay
	// open: then the aggregate role fails every row without a result as
	// PROCESSING_FAILED and the import completes. 0 = no deadline (serve's
	// --import-deadline defaults to 1h).
	ImportDeadline time.Duration
	// Lookup is the third-party lookup stage, off unless Lookup.URL is set.
	Lookup LookupConfig
	Logger *slog.Logger

	// enrich replaces the phone rule; tests use it to inject failures.
	enrich func(input, region string) phone.Result
	// noPrefetch turns off enriching the next job ahead (benchmarks
	// compare with and without).
	noPrefetch bool
	// withoutStats leaves the carrier statistics handler out (tests of
	// its catch-up from history).
	withoutStats bool
}

// ParseRoles parses --roles ("all" or a comma-separated subset).
func ParseRoles(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return AllRoles(), nil
	}
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(AllRoles(), r) {
			return nil, fmt.Errorf("unknown role %q (roles: %s)", r, strings.Join(AllRoles(), ","))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no roles given")
	}
	return out, nil
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.Backend == "" {
		c.Backend = "sqlite"
	}
	if len(c.Roles) == 0 {
		c.Roles = AllRoles()
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 100 << 20
	}
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Lookup.setDefaults()
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch c.Backend {
	case BackendSQLite:
	case BackendPostgres:
		if c.PostgresDSN == "" {
			return errors.New("backend postgres needs --postgres-dsn")
		}
	case BackendMySQL:
		if c.MySQLDSN == "" {
			return errors.New("backend mysql needs --mysql-dsn")
		}
	case BackendKafka:
		if len(c.KafkaBrokers) == 0 {
			return errors.New("backend kafka needs --kafka-brokers")
		}
		if c.KafkaPartitions < 0 || c.KafkaSessionTimeout < 0 {
			return errors.New("kafka partitions and session timeout must not be negative")
		}
	default:
		return fmt.Errorf("unknown backend %q (sqlite, postgres, mysql or kafka)", c.Backend)
	}
	if c.ImportDeadline < 0 {
		return errors.New("import deadline must not be negative")
	}
	if c.MaxUploadBytes < 0 || c.MaxRows < 0 || c.JobSize < 0 || c.ImportRate < 0 || c.ImportBurst < 0 {
		return errors.New("limits must not be negative")
	}
	if err := c.Lookup.Validate(); err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	return nil
}

func (c Config) has(role string) bool { return slices.Contains(c.Roles, role) }
