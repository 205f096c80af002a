package app

import (
	"errors"
	"net/http"
	"time"

	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/lookup"
)

// LookupConfig is the third-party lookup stage's part of Config. The stage
// is on when URL is set. Every process of a deployment gets the same
// settings: the projector enqueues lookups, the lookup role makes them, the
// project role projects them and the aggregate role keeps the deadline.
// Zero values mean the defaults.
type LookupConfig struct {
	// URL is the provider's endpoint template, containing {e164}.
	URL string
	// Headers are sent with every request.
	Headers http.Header
	// Timeout bounds each request. Default 5s.
	Timeout time.Duration
	// Rate is the most requests per second; 0 means no limit.
	Rate float64
	// Concurrency is the most requests in flight per lookup process.
	// Default 4.
	Concurrency int
	// Deadline is how long an import may wait for lookups after every
	// job of it is counted. Default 10m.
	Deadline time.Duration
	// TTL is how long a successful lookup answers for its number.
	// Default 24h.
	TTL time.Duration

	// Tuning, mostly for tests; zero means the lookup package's defaults.
	MaxRetries      int
	RetryInitial    time.Duration
	RetryBudget     time.Duration
	BreakerFailures int
	BreakerCooldown time.Duration
	PollInterval    time.Duration
}

// Enabled reports whether the stage is on.
func (c LookupConfig) Enabled() bool { return c.URL != "" }

func (c *LookupConfig) setDefaults() {
	if c.Deadline == 0 {
		c.Deadline = lookup.DefaultDeadline
	}
	if c.TTL == 0 {
		c.TTL = projections.DefaultLookupTTL
	}
}

// Validate checks the configuration.
func (c LookupConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	if c.Timeout < 0 || c.Rate < 0 || c.Concurrency < 0 || c.Deadline < 0 || c.TTL < 0 || c.MaxRetries < 0 ||
		c.RetryInitial < 0 || c.RetryBudget < 0 || c.BreakerFailures < 0 || c.BreakerCooldown < 0 || c.PollInterval < 0 {
		return errors.New("lookup settings must not be negative")
	}
	return c.policy().Validate()
}

// policy is the call policy of the lookup package.
func (c LookupConfig) policy() lookup.Config {
	return lookup.Config{
		URL:             c.URL,
		Headers:         c.Headers,
		Timeout:         c.Timeout,
		Rate:            c.Rate,
		Concurrency:     c.Concurrency,
		MaxRetries:      c.MaxRetries,
		RetryInitial:    c.RetryInitial,
		RetryBudget:     c.RetryBudget,
		BreakerFailures: c.BreakerFailures,
		BreakerCooldown: c.BreakerCooldown,
		PollInterval:    c.PollInterval,
	}
}
