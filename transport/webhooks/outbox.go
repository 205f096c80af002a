package webhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file holds the Store operations the Dispatcher uses to claim, send and
// settle deliveries.

// errLeaseLost means a delivery's lease expired and another dispatcher claimed
// it before this one recorded its outcome.
const errLeaseLost = sentinelError("webhooks: delivery lease lost")

// dueCondition selects pending, unleased deliveries that are due. Its
// placeholders are: now (lease), now - first delay (schedule_index 0), now.
const dueCondition = `status = 'pending' AND locked_until <= ?
	AND ((schedule_index = 0 AND next_attempt_at <= ?) OR (schedule_index > 0 AND next_attempt_at <= ?))`

// ceilMillis rounds t up to a whole millisecond, so a delivery stored as due at
// that millisecond is never claimed before t.
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// claimDue leases up to limit due deliveries to this dispatcher and returns
// their ids; token identifies the lease. A delivery another dispatcher claimed
// first is skipped: the conditional UPDATE affects no row.
func (s *Store) claimDue(ctx context.Context, now time.Time, firstDelay, lease time.Duration, token string, limit int) ([]string, error) {
	nowMS, firstMS := toMillis(now), toMillis(now.Add(-firstDelay))
	rows, err := s.query(ctx, s.db, `SELECT id FROM webhook_deliveries WHERE `+dueCondition+`
		ORDER BY next_attempt_at, id LIMIT ?`, nowMS, firstMS, nowMS, 2*limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: due deliveries: %w", err)
	}
	var candidates []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("webhooks: due deliveries: %w", err)
		}
		candidates = append(candidates, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: due deliveries: %w", err)
	}
	var claimed []string
	for _, id := range candidates {
		if len(claimed) == limit {
			break
		}
		res, err := s.exec(ctx, s.db, `UPDATE webhook_deliveries SET locked_until = ?, lock_token = ?
			WHERE id = ? AND `+dueCondition, toMillis(now.Add(lease)), token, id, nowMS, firstMS, nowMS)
		if err != nil {
			return claimed, fmt.Errorf("webhooks: claim delivery %s: %w", id, err)
		}
		if ok, err := affectedOne(res); err != nil {
			return claimed, err
		} else if ok {
			claimed = append(claimed, id)
		}
	}
	return claimed, nil
}

// claim is a leased delivery with everything needed to send it.
type claim struct {
	id, token                             string
	tenant, eventID, subscriptionID       string
	url, webhookID, secret, correlationID string
	body                                  []byte
	scheduleIndex, attemptCount           int
	subscriptionGone                      bool // disabled or deleted
}

// loadClaim reads a delivery this dispatcher holds the lease token for.
func (s *Store) loadClaim(ctx context.Context, id, token string) (claim, error) {
	c := claim{id: id, token: token}
	var (
		body     string
		disabled sql.NullInt64
	)
	err := s.queryRow(ctx, s.db, `SELECT d.tenant, d.event_id, d.subscription_id, d.url, d.webhook_id, d.secret,
			d.schedule_index, d.attempt_count, e.body, e.correlation_id, sub.disabled
		FROM webhook_deliveries d
		JOIN webhook_events e ON e.tenant = d.tenant AND e.event_id = d.event_id
		LEFT JOIN webhook_subscriptions sub ON sub.id = d.subscription_id
		WHERE d.id = ? AND d.lock_token = ?`, id, token).Scan(
		&c.tenant, &c.eventID, &c.subscriptionID, &c.url, &c.webhookID, &c.secret,
		&c.scheduleIndex, &c.attemptCount, &body, &c.correlationID, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return claim{}, errLeaseLost
	}
	if err != nil {
		return claim{}, fmt.Errorf("webhooks: load delivery %s: %w", id, err)
	}
	c.body = []byte(body)
	c.subscriptionGone = c.subscriptionID != "" && (!disabled.Valid || disabled.Int64 != 0)
	return c, nil
}

// releaseClaim gives a lease back without recording an attempt, e.g. on
// shutdown, so the delivery is due again at once.
func (s *Store) releaseClaim(ctx context.Context, id, token string) error {
	if _, err := s.exec(ctx, s.db, `UPDATE webhook_deliveries SET locked_until = 0, lock_token = ''
		WHERE id = ? AND lock_token = ?`, id, token); err != nil {
		return fmt.Errorf("webhooks: release delivery %s: %w", id, err)
	}
	return nil
}

// failUnsent marks a leased delivery failed without an attempt (its
// subscription was disabled or deleted).
func (s *Store) failUnsent(ctx context.Context, id, token string, now time.Time) error {
	if _, err := s.exec(ctx, s.db, `UPDATE webhook_deliveries SET status = ?, next_attempt_at = NULL,
		locked_until = 0, lock_token = '', updated_at = ? WHERE id = ? AND lock_token = ?`,
		StatusFailed, toMillis(now), id, token); err != nil {
		return fmt.Errorf("webhooks: fail delivery %s: %w", id, err)
	}
	return nil
}

// subscriptionEffect is what an attempt means for its subscription.
type subscriptionEffect int

const (
	subscriptionOK      subscriptionEffect = iota // the endpoint accepted: reset failing_since
	subscriptionFailing                           // start or continue a failure streak
	subscriptionGoneNow                           // 410: disable now
)

// outcome is the settled result of one attempt.
type outcome struct {
	attempt       Attempt
	status        string     // new delivery status
	next          *time.Time // next attempt when status is pending
	scheduleIndex int        // schedule position of the next attempt
	effect        subscriptionEffect
}

// recordAttempt stores an attempt and the delivery's new state, releases the
// lease, and applies the attempt's effect on the subscription: a 410 disables
// it, and a failure streak older than disableAfter disables it (disableAfter
// <= 0 never does). It returns the reason when it disabled the subscription, and
// errLeaseLost when the lease was no longer this dispatcher's.
func (s *Store) recordAttempt(ctx context.Context, c claim, o outcome, now time.Time, disableAfter time.Duration) (string, error) {
	var disabledReason string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var next sql.NullInt64
		if o.next != nil {
			next = sql.NullInt64{Int64: ceilMillis(*o.next), Valid: true}
		}
		res, err := s.exec(ctx, tx, `UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?,
			schedule_index = ?, attempt_count = attempt_count + 1, locked_until = 0, lock_token = '', updated_at = ?
			WHERE id = ? AND lock_token = ?`,
			o.status, next, o.scheduleIndex, toMillis(now), c.id, c.token)
		if err != nil {
			return fmt.Errorf("webhooks: update delivery %s: %w", c.id, err)
		}
		if ok, err := affectedOne(res); err != nil {
			return err
		} else if !ok {
			return errLeaseLost
		}
		a := o.attempt
		if _, err := s.exec(ctx, tx, `INSERT INTO webhook_attempts
			(delivery_id, attempt_no, attempted_at, status_code, latency_ms, error_text, response_snippet)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.id, c.attemptCount+1, toMillis(a.At), a.StatusCode, a.LatencyMS, dbText(a.Error), dbText(a.ResponseSnippet)); err != nil {
			return fmt.Errorf("webhooks: record attempt of %s: %w", c.id, err)
		}
		if c.subscriptionID == "" {
			return nil
		}
		disabledReason, err = s.applyEffect(ctx, tx, c.subscriptionID, o.effect, now, disableAfter)
		return err
	})
	if err != nil {
		return "", err
	}
	return disabledReason, nil
}

// applyEffect updates a subscription's failure streak and disables it when
// warranted, returning the reason it was disabled.
func (s *Store) applyEffect(ctx context.Context, tx *sql.Tx, subID string, effect subscriptionEffect, now time.Time, disableAfter time.Duration) (string, error) {
	switch effect {
	case subscriptionOK:
		if _, err := s.exec(ctx, tx, `UPDATE webhook_subscriptions SET failing_since = NULL WHERE id = ?`, subID); err != nil {
			return "", fmt.Errorf("webhooks: reset subscription %s: %w", subID, err)
		}
		return "", nil
	case subscriptionGoneNow:
		return s.disableSubscription(ctx, tx, subID, "endpoint returned 410 Gone at "+now.UTC().Format(time.RFC3339), now)
	}
	if _, err := s.exec(ctx, tx, `UPDATE webhook_subscriptions SET failing_since = ? WHERE id = ? AND failing_since IS NULL`,
		toMillis(now), subID); err != nil {
		return "", fmt.Errorf("webhooks: mark subscription %s failing: %w", subID, err)
	}
	if disableAfter <= 0 {
		return "", nil
	}
	var since sql.NullInt64
	err := s.queryRow(ctx, tx, `SELECT failing_since FROM webhook_subscriptions WHERE id = ?`, subID).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil // deleted meanwhile
	}
	if err != nil {
		return "", fmt.Errorf("webhooks: subscription %s: %w", subID, err)
	}
	if !since.Valid || now.Sub(fromMillis(since.Int64)) < disableAfter {
		return "", nil
	}
	reason := "deliveries failing continuously since " + fromMillis(since.Int64).Format(time.RFC3339)
	return s.disableSubscription(ctx, tx, subID, reason, now)
}

// disableSubscription disables a subscription and fails its other pending
// deliveries, returning reason, or "" when it was already disabled.
func (s *Store) disableSubscription(ctx context.Context, tx *sql.Tx, subID, reason string, now time.Time) (string, error) {
	res, err := s.exec(ctx, tx, `UPDATE webhook_subscriptions SET disabled = 1, disabled_reason = ?
		WHERE id = ? AND disabled = 0`, reason, subID)
	if err != nil {
		return "", fmt.Errorf("webhooks: disable subscription %s: %w", subID, err)
	}
	if ok, err := affectedOne(res); err != nil || !ok {
		return "", err
	}
	// Leased deliveries are settled by their own dispatcher.
	if _, err := s.exec(ctx, tx, `UPDATE webhook_deliveries SET status = ?, next_attempt_at = NULL, updated_at = ?
		WHERE subscription_id = ? AND status = ? AND lock_token = ''`,
		StatusFailed, toMillis(now), subID, StatusPending); err != nil {
		return "", fmt.Errorf("webhooks: fail deliveries of %s: %w", subID, err)
	}
	return reason, nil
}

// dbText makes s storable in any dialect's TEXT column: valid UTF-8 without
// NUL bytes (which PostgreSQL rejects).
func dbText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
