package lookup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker"

	"github.com/phonepipe/phonepipe/domain"
)

// reasonInternal is the reason of a call that failed on this side (a
// panic in the handler), not the provider's.
const reasonInternal = "internal_error"

// statusError is a response whose status is not a success.
type statusError struct {
	code int
}

func (e *statusError) Error() string { return fmt.Sprintf("lookup provider answered %d", e.code) }

// retryable reports statuses that may succeed later: 408 and 5xx.
func (e *statusError) retryable() bool {
	return e.code == http.StatusRequestTimeout || e.code >= 500
}

// rateLimitedError is a 429 answer. Its Retry-After, when given, is the
// least delay before the next attempt: it unwraps to the backoff's
// RetryAfterError, which makes the retry middleware wait exactly that long.
type rateLimitedError struct {
	retryAfter time.Duration
}

func (e *rateLimitedError) Error() string {
	if e.retryAfter > 0 {
		return fmt.Sprintf("lookup provider rate limited the request (429, retry after %s)", e.retryAfter)
	}
	return "lookup provider rate limited the request (429)"
}

func (e *rateLimitedError) Unwrap() error {
	if e.retryAfter <= 0 {
		return nil
	}
	return &backoff.RetryAfterError{Duration: e.retryAfter}
}

// invalidResponseError is a successful response that cannot be used (not
// JSON, too large): asking again would get the same.
type invalidResponseError struct {
	why string
}

func (e *invalidResponseError) Error() string { return "unusable lookup response: " + e.why }

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. It returns 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryable reports whether another attempt of a call may succeed. An open
// circuit ends the call (skipped) at once; a circuit letting its trial
// requests through (half-open) is retried after the backoff.
func retryable(err error) bool {
	var (
		se *statusError
		ir *invalidResponseError
	)
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &se):
		return se.retryable()
	case errors.As(err, &ir):
		return false
	default:
		return true // timeouts, connection errors, 429, half-open circuit
	}
}

// providerHealthy reports, for the circuit breaker, whether an attempt's
// error says nothing against the provider's health: it answered (even if
// with a client error, an unusable body or a rate limit), or this process
// gave up (shutting down).
func providerHealthy(err error) bool {
	var (
		se *statusError
		ir *invalidResponseError
		rl *rateLimitedError
	)
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.As(err, &ir), errors.As(err, &rl):
		return true
	case errors.As(err, &se):
		return !se.retryable()
	default:
		return false
	}
}

// outcomeOf turns the final error of a call into its terminal lookup.
func outcomeOf(err error) domain.Lookup {
	var (
		se *statusError
		ir *invalidResponseError
		rl *rateLimitedError
		ne net.Error
		rp middleware.RecoveredPanicError
	)
	fail := func(reason string) domain.Lookup { return domain.Lookup{Status: domain.LookupFailed, Reason: reason} }
	switch {
	case errors.As(err, &rp):
		return fail(reasonInternal)
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return domain.Lookup{Status: domain.LookupSkipped, Reason: domain.LookupReasonCircuitOpen}
	case errors.As(err, &rl):
		return domain.Lookup{Status: domain.LookupSkipped, Reason: domain.LookupReasonRateLimited}
	case errors.As(err, &se):
		return fail(fmt.Sprintf("http_%d", se.code))
	case errors.As(err, &ir):
		return fail(domain.LookupReasonInvalidResponse)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fail(domain.LookupReasonTimeout)
	default:
		return fail(domain.LookupReasonUnreachable)
	}
}
