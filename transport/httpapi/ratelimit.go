package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/phonepipe/phonepipe/domain"
)

// RateLimit is a per-tenant token bucket: each tenant may make Burst requests
// at once and PerSecond requests a second on average. PerSecond <= 0 turns
// the limit off; a Burst below 1 is read as 1.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// enabled reports whether the limit applies at all.
func (l RateLimit) enabled() bool { return l.PerSecond > 0 && !math.IsInf(l.PerSecond, 1) }

// tenantLimiters holds one token bucket per tenant. The set of tenants is
// fixed when it is built (the tenants of the API keys, or the default
// tenant), so memory stays bounded however many requests, keys or tenant
// names clients invent; a tenant outside the set (which authentication
// makes impossible) shares one extra bucket rather than getting its own.
// The map is never written after construction; each rate.Limiter is safe
// for concurrent use.
type tenantLimiters struct {
	limit    RateLimit
	byTenant map[string]*rate.Limiter
	other    *rate.Limiter
}

// newTenantLimiters builds the buckets of the tenants of keys (the default
// tenant when keys is empty).
func newTenantLimiters(l RateLimit, keys []APIKey) *tenantLimiters {
	l.Burst = max(l.Burst, 1)
	newBucket := func() *rate.Limiter { return rate.NewLimiter(rate.Limit(l.PerSecond), l.Burst) }
	tl := &tenantLimiters{limit: l, byTenant: map[string]*rate.Limiter{}, other: newBucket()}
	if len(keys) == 0 {
		tl.byTenant[domain.DefaultTenant] = newBucket()
	}
	for _, k := range keys {
		if _, ok := tl.byTenant[k.Tenant]; !ok {
			tl.byTenant[k.Tenant] = newBucket()
		}
	}
	return tl
}

// take takes one token from tenant's bucket at now. It returns 0 when the
// request may proceed, else how long the caller should wait before trying
// again (no token is taken then).
func (tl *tenantLimiters) take(tenant string, now time.Time) time.Duration {
	lim, ok := tl.byTenant[tenant]
	if !ok {
		lim = tl.other
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		// Cannot happen with Burst >= 1; refuse for a second rather than
		// let the request through.
		return time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, for the
// Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// limitImports wraps the import handler in the per-tenant rate limit of
// cfg.ImportRate. It must run behind authenticate, so that only
// authenticated requests spend tokens and the tenant is known. A request over
// the limit is answered 429 with Retry-After (whole seconds) and the error
// code rate_limited, before its body is read.
func (s *Server) limitImports(next http.HandlerFunc) http.HandlerFunc {
	if !s.cfg.ImportRate.enabled() {
		return next
	}
	tl := newTenantLimiters(s.cfg.ImportRate, s.cfg.APIKeys)
	return func(w http.ResponseWriter, r *http.Request) {
		wait := tl.take(TenantFrom(r.Context()), s.cfg.Now())
		if wait == 0 {
			next(w, r)
			return
		}
		secs := retryAfterSeconds(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.writeError(w, r, errorf(http.StatusTooManyRequests, "rate_limited", fmt.Sprintf(
			"too many imports: this tenant may start %g per second (bursts of %d); retry in %d s",
			tl.limit.PerSecond, tl.limit.Burst, secs)))
	}
}
