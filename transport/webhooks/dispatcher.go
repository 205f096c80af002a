package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Outcomes passed to DispatcherConfig.OnAttempt.
const (
	OutcomeSuccess     = "success"
	OutcomeFailure     = "failure"
	OutcomeGone        = "gone"
	OutcomeRateLimited = "rate_limited"
)

// DispatcherConfig configures a Dispatcher. Zero values mean the defaults.
type DispatcherConfig struct {
	// Schedule is the retry schedule: attempt i waits Schedule[i] (±10% jitter)
	// after the previous attempt, Schedule[0] after enqueueing. When all are
	// used up the delivery fails. Default DefaultSchedule().
	Schedule []time.Duration
	// Timeout bounds each request. Default 15s.
	Timeout time.Duration
	// PollInterval is how often the outbox is checked for due deliveries.
	// Default 1s.
	PollInterval time.Duration
	// DisableAfter disables a subscription whose deliveries have failed
	// continuously (no success in between) for this long. Default 5 days.
	DisableAfter time.Duration
	// AllowPrivate turns the SSRF guard off (see NewHTTPClient). Only for tests
	// and trusted deployments.
	AllowPrivate bool
	// Concurrency is the number of parallel sends. Default 8.
	Concurrency int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives delivery logs. Default slog.Default().
	Logger *slog.Logger
	// OnAttempt, if set, is called after each recorded attempt with
	// OutcomeSuccess, OutcomeFailure, OutcomeGone or OutcomeRateLimited. It may
	// be called from several goroutines at once.
	OnAttempt func(outcome string)
}

// Defaults of DispatcherConfig.
const (
	DefaultTimeout      = 15 * time.Second
	DefaultPollInterval = time.Second
	DefaultDisableAfter = 5 * 24 * time.Hour
	DefaultConcurrency  = 8
)

// leaseMargin is how much longer than Timeout a claimed delivery stays leased,
// covering the database writes around the request.
const leaseMargin = time.Minute

// releaseTimeout bounds the database write that settles or releases a delivery
// after the dispatcher's context is done.
const releaseTimeout = 5 * time.Second

// Dispatcher sends due deliveries from a Store. Several dispatchers, in one
// process or many, may share a database: each delivery is leased to one of them
// at a time.
type Dispatcher struct {
	store  *Store
	cfg    DispatcherConfig
	client *http.Client
}

// NewDispatcher validates cfg, fills in its defaults and returns a Dispatcher
// for s.
func NewDispatcher(s *Store, cfg DispatcherConfig) (*Dispatcher, error) {
	if s == nil {
		return nil, errors.New("webhooks: dispatcher needs a store")
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultSchedule()
	} else {
		cfg.Schedule = append([]time.Duration(nil), cfg.Schedule...)
	}
	for i, d := range cfg.Schedule {
		if d < 0 {
			return nil, fmt.Errorf("webhooks: schedule[%d] is negative (%s)", i, d)
		}
	}
	if cfg.Timeout < 0 || cfg.PollInterval < 0 || cfg.DisableAfter < 0 || cfg.Concurrency < 0 {
		return nil, errors.New("webhooks: dispatcher config has a negative value")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.DisableAfter == 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Dispatcher{store: s, cfg: cfg, client: NewHTTPClient(cfg.AllowPrivate, cfg.Timeout)}, nil
}

// Run sends due deliveries until ctx is done, then waits for the sends in
// flight to stop and returns nil. A send interrupted by ctx is not counted as
// an attempt: its delivery is released and sent again by the next Run. Database
// errors are logged and retried at the next poll.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer d.client.CloseIdleConnections()
	defer wg.Wait()
	slots := make(chan struct{}, d.cfg.Concurrency)
	freed := make(chan struct{}, 1)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-freed:
		}
		free := cap(slots) - len(slots)
		claimed := 0
		if free > 0 {
			token, err := newID("lease_")
			if err != nil {
				return err
			}
			ids, err := d.store.claimDue(ctx, d.cfg.Now(), d.cfg.Schedule[0], d.cfg.Timeout+leaseMargin, token, free)
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.ErrorContext(ctx, "webhooks: claiming deliveries", "error", err)
			}
			for _, id := range ids {
				slots <- struct{}{} // never blocks: only this loop fills slots, and len(ids) <= free
				wg.Go(func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					d.deliver(ctx, id, token)
				})
			}
			claimed = len(ids)
		}
		wait := d.cfg.PollInterval
		if free > 0 && claimed == free {
			wait = 0 // there may be more due right now
		}
		timer.Reset(wait)
	}
}

// deliver makes one attempt of a leased delivery and records it.
func (d *Dispatcher) deliver(ctx context.Context, id, token string) {
	log := d.cfg.Logger.With("delivery_id", id)
	// Settling must happen even if ctx ends while the request is in flight.
	settleCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	}
	release := func() {
		sctx, cancel := settleCtx()
		defer cancel()
		if err := d.store.releaseClaim(sctx, id, token); err != nil {
			log.Error("webhooks: releasing delivery", "error", err)
		}
	}

	c, err := d.store.loadClaim(ctx, id, token)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, errLeaseLost) {
			log.Error("webhooks: loading delivery", "error", err)
		}
		release()
		return
	}
	log = log.With("tenant", c.tenant, "event_id", c.eventID, "webhook_id", c.webhookID,
		"subscription_id", c.subscriptionID, "correlation_id", c.correlationID)
	if c.subscriptionGone {
		if err := d.store.failUnsent(ctx, id, token, d.cfg.Now()); err != nil {
			log.Error("webhooks: failing delivery of disabled subscription", "error", err)
			release()
		}
		return
	}
	if ctx.Err() != nil {
		release()
		return
	}

	res := d.send(ctx, c)
	if res.err != nil && ctx.Err() != nil {
		release() // shutting down: not the endpoint's fault, try again later
		return
	}
	name, o := d.judge(c, res)
	sctx, cancel := settleCtx()
	defer cancel()
	reason, err := d.store.recordAttempt(sctx, c, o, res.end, d.cfg.DisableAfter)
	switch {
	case errors.Is(err, errLeaseLost):
		log.Warn("webhooks: lease expired before the attempt was recorded", "outcome", name)
		return
	case err != nil:
		log.Error("webhooks: recording attempt", "outcome", name, "error", err)
		release()
		return
	}
	attrs := []any{"outcome", name, "status_code", o.attempt.StatusCode, "attempt", c.attemptCount + 1,
		"delivery_status", o.status}
	if o.attempt.Error != "" {
		attrs = append(attrs, "error", o.attempt.Error)
	}
	if o.next != nil {
		attrs = append(attrs, "next_attempt_at", *o.next)
	}
	if name == OutcomeSuccess {
		log.Debug("webhooks: delivered", attrs...)
	} else {
		log.Warn("webhooks: delivery attempt failed", attrs...)
	}
	if reason != "" {
		log.Warn("webhooks: subscription disabled", "reason", reason)
	}
	if d.cfg.OnAttempt != nil {
		d.cfg.OnAttempt(name)
	}
}

// judge turns a send result into the OnAttempt outcome name and the delivery's
// next state.
func (d *Dispatcher) judge(c claim, res sendResult) (string, outcome) {
	o := outcome{
		attempt: Attempt{
			At:              res.at,
			StatusCode:      res.statusCode,
			LatencyMS:       res.end.Sub(res.at).Milliseconds(),
			ResponseSnippet: res.snippet,
		},
		status: StatusFailed,
		effect: subscriptionFailing,
	}
	name := OutcomeFailure
	switch code := res.statusCode; {
	case res.err != nil:
		o.attempt.Error = res.err.Error()
		if res.permanent {
			return name, o
		}
	case code >= 200 && code <= 299:
		o.status, o.effect = StatusSucceeded, subscriptionOK
		return OutcomeSuccess, o
	case code == http.StatusGone:
		o.attempt.Error = "endpoint returned 410 Gone"
		o.effect = subscriptionGoneNow
		return OutcomeGone, o
	case code == http.StatusTooManyRequests:
		o.attempt.Error = "rate limited (429)"
		name = OutcomeRateLimited
	case code >= 300 && code <= 399:
		o.attempt.Error = fmt.Sprintf("redirect status %d (redirects are not followed)", code)
	default:
		o.attempt.Error = fmt.Sprintf("non-2xx status %d", code)
	}
	next := c.scheduleIndex + 1
	if next >= len(d.cfg.Schedule) {
		o.attempt.Error += "; retry schedule exhausted"
		return name, o
	}
	delay := jitter(d.cfg.Schedule[next])
	if res.retryAfter > delay {
		delay = res.retryAfter
	}
	at := res.end.Add(delay)
	o.status, o.next, o.scheduleIndex = StatusPending, &at, next
	return name, o
}
