package lookup

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Placeholder is replaced by the URL-escaped E.164 number in Config.URL.
const Placeholder = "{e164}"

// Defaults of Config.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultConcurrency     = 4
	DefaultMaxRetries      = 3
	DefaultRetryInitial    = 250 * time.Millisecond
	DefaultRetryMax        = 5 * time.Second
	DefaultRetryBudget     = 30 * time.Second
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
	DefaultPollInterval    = 250 * time.Millisecond
	DefaultMaxBodyBytes    = 64 << 10
	DefaultMaxRawBytes     = 4 << 10
	DefaultBatchSize       = 100
	DefaultBatchDelay      = 100 * time.Millisecond
	DefaultMaxClaims       = 3
)

// Config is the policy of the lookup calls: the provider, and the bounds
// that keep it from holding anything back. Zero values mean the defaults.
type Config struct {
	// URL is the provider's endpoint, containing Placeholder.
	URL string
	// Headers are sent with every request (credentials, typically).
	Headers http.Header
	// Timeout bounds each request. Default 5s.
	Timeout time.Duration
	// Rate is the most requests per second, retries included; 0 means no
	// limit.
	Rate float64
	// Concurrency is the most calls in flight. Default 4.
	Concurrency int
	// MaxRetries bounds the retries of one call after its first request.
	// Default 3.
	MaxRetries int
	// RetryInitial and RetryMax bound the exponential backoff between
	// attempts. Defaults 250ms and 5s.
	RetryInitial, RetryMax time.Duration
	// RetryBudget bounds how long one call may keep retrying; a
	// Retry-After beyond it ends the call as skipped (rate budget
	// exhausted). Default 30s.
	RetryBudget time.Duration
	// BreakerFailures consecutive failed requests open the circuit.
	// Default 5.
	BreakerFailures int
	// BreakerCooldown is how long the circuit stays open before it lets a
	// trial request through. Default 30s.
	BreakerCooldown time.Duration
	// PollInterval is how often due calls are looked for when idle.
	// Default 250ms.
	PollInterval time.Duration
	// MaxBodyBytes bounds a response body; larger ones fail. Default 64 KiB.
	MaxBodyBytes int64
	// MaxRawBytes bounds a response kept as `raw` (one the mapping does
	// not know); larger ones are marked raw_truncated. Default 4 KiB.
	MaxRawBytes int
	// BatchSize and BatchDelay bound how many outcomes are recorded in one
	// transaction and how long an outcome waits for its batch. Defaults
	// 100 and 100ms.
	BatchSize  int
	BatchDelay time.Duration
	// MaxClaims ends a call as failed (abandoned) instead of claiming it
	// again after this many claims whose outcome was never recorded
	// (crashes). Default 3.
	MaxClaims int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the stage's logs. Default: discard.
	Logger *slog.Logger
	// Observer, if set, is told about outcomes and circuit changes.
	Observer Observer
}

// Observer is told about the stage's outcomes and circuit, for metrics. It
// must be fast and safe for concurrent use.
type Observer interface {
	// LookupFinished is called once per recorded outcome.
	LookupFinished(status, reason string)
	// CircuitChanged is called when the circuit breaker changes state
	// ("closed", "half-open", "open").
	CircuitChanged(from, to string)
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Timeout, DefaultTimeout)
	def(&c.RetryInitial, DefaultRetryInitial)
	def(&c.RetryMax, DefaultRetryMax)
	def(&c.RetryBudget, DefaultRetryBudget)
	def(&c.BreakerCooldown, DefaultBreakerCooldown)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.BatchDelay, DefaultBatchDelay)
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = DefaultBreakerFailures
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxRawBytes == 0 {
		c.MaxRawBytes = DefaultMaxRawBytes
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxClaims == 0 {
		c.MaxClaims = DefaultMaxClaims
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := ValidateURL(c.URL); err != nil {
		return err
	}
	for name, values := range c.Headers {
		if err := ValidateHeader(name, values...); err != nil {
			return err
		}
	}
	if c.Timeout < 0 || c.Rate < 0 || c.Concurrency < 0 || c.MaxRetries < 0 || c.RetryInitial < 0 || c.RetryMax < 0 ||
		c.RetryBudget < 0 || c.BreakerFailures < 0 || c.BreakerCooldown < 0 || c.PollInterval < 0 ||
		c.MaxBodyBytes < 0 || c.MaxRawBytes < 0 || c.BatchSize < 0 || c.BatchDelay < 0 || c.MaxClaims < 0 {
		return errors.New("lookup: negative setting")
	}
	return nil
}

// ValidateURL checks a provider URL template: an absolute http(s) URL
// containing Placeholder.
func ValidateURL(tmpl string) error {
	if !strings.Contains(tmpl, Placeholder) {
		return fmt.Errorf("lookup: URL %q does not contain %s", tmpl, Placeholder)
	}
	u, err := url.Parse(strings.ReplaceAll(tmpl, Placeholder, "%2B15551234567"))
	if err != nil {
		return fmt.Errorf("lookup: URL %q: %w", tmpl, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("lookup: URL %q is not an absolute http(s) URL", tmpl)
	}
	return nil
}

// lease is how long a claimed call stays leased: long enough for every
// attempt, the waits between them and the recording of its outcome.
func (c Config) lease() time.Duration {
	attempts := time.Duration(c.MaxRetries + 1)
	var throttle time.Duration
	if c.Rate > 0 {
		throttle = time.Duration(float64(c.Concurrency) / c.Rate * float64(time.Second))
	}
	return c.RetryBudget + attempts*(c.Timeout+throttle) + c.BatchDelay + time.Minute
}

// ValidateHeader checks a header name (an RFC 9110 token) and its values
// (no control characters but tab).
func ValidateHeader(name string, values ...string) error {
	if name == "" || strings.IndexFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	}) >= 0 {
		return fmt.Errorf("lookup: invalid header name %q", name)
	}
	for _, v := range values {
		if strings.IndexFunc(v, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) >= 0 {
			return fmt.Errorf("lookup: invalid value of header %s", name)
		}
	}
	return nil
}
