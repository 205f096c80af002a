package webhooks

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultSchedule returns the default retry schedule (the Svix one): the first
// attempt at once, then retries 5s, 5m, 30m, 2h, 5h, 10h and 10h after the
// previous attempt.
func DefaultSchedule() []time.Duration {
	return []time.Duration{
		0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
	}
}

// maxRetryAfter caps how long a 429's Retry-After can postpone a delivery.
const maxRetryAfter = 24 * time.Hour

// jitter spreads d uniformly over ±10% so retries of many deliveries that failed
// together do not arrive together.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// parseRetryAfter reads a Retry-After header value, either delay-seconds or an
// HTTP date, as a delay from now. It returns 0 when the header is absent,
// malformed or in the past, and at most maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
