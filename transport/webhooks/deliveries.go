package webhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// maxListedDeliveries bounds ListDeliveries.
const maxListedDeliveries = 100

// Delivery is one event on its way to one target.
type Delivery struct {
	ID string `json:"id"`
	// SubscriptionID is "" for the per-import URL.
	SubscriptionID string `json:"subscription_id"`
	Tenant         string `json:"tenant"`
	EventID        string `json:"event_id"`
	EventType      string `json:"event_type"`
	URL            string `json:"url"`
	// WebhookID is the webhook-id header, the same on every attempt.
	WebhookID string `json:"webhook_id"`
	// Status is StatusPending, StatusSucceeded or StatusFailed.
	Status   string    `json:"status"`
	Attempts []Attempt `json:"attempts"`
	// NextAttemptAt is when a pending delivery is due; nil once it is final.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// Attempt is one HTTP request made for a delivery.
type Attempt struct {
	At time.Time `json:"at"`
	// StatusCode is the response status, 0 when no response was received.
	StatusCode int   `json:"status_code"`
	LatencyMS  int64 `json:"latency_ms"`
	// Error describes why the attempt failed; "" on success.
	Error string `json:"error,omitempty"`
	// ResponseSnippet is the first 512 bytes of the response body.
	ResponseSnippet string `json:"response_snippet,omitempty"`
}

const deliveryColumns = `id, subscription_id, tenant, event_id, event_type, url, webhook_id, status, next_attempt_at, created_at`

// ListDeliveries returns the most recent deliveries (at most 100, newest first)
// of tenant's subscription subscriptionID, or of tenant's per-import URLs when
// subscriptionID is "", with their attempts. It returns ErrNotFound when the
// subscription does not exist or belongs to another tenant.
func (s *Store) ListDeliveries(ctx context.Context, tenant, subscriptionID string) ([]Delivery, error) {
	if err := s.checkSubscription(ctx, s.db, tenant, subscriptionID); err != nil {
		return nil, err
	}
	return s.loadDeliveries(ctx, s.db, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE tenant = ? AND subscription_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
		tenant, subscriptionID, maxListedDeliveries)
}

// Resend makes tenant's delivery deliveryID (of subscription subscriptionID,
// "" for per-import) pending and due now, restarting its retry schedule (so the
// dispatcher's Schedule[0], zero by default, applies again); it keeps its
// webhook-id, body and attempt history. Deliveries of a disabled subscription
// are not sent: the dispatcher fails them. Resending a delivery whose attempt is
// in flight has no effect beyond that attempt's outcome. It returns ErrNotFound
// when the delivery is not tenant's or not of that subscription.
func (s *Store) Resend(ctx context.Context, tenant, subscriptionID, deliveryID string) (Delivery, error) {
	var d Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkSubscription(ctx, tx, tenant, subscriptionID); err != nil {
			return err
		}
		const where = ` FROM webhook_deliveries WHERE id = ? AND tenant = ? AND subscription_id = ?`
		var one int
		err := s.queryRow(ctx, tx, `SELECT 1`+where, deliveryID, tenant, subscriptionID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("webhooks: resend %s: %w", deliveryID, err)
		}
		now := toMillis(s.now())
		if _, err := s.exec(ctx, tx, `UPDATE webhook_deliveries
			SET status = ?, schedule_index = 0, next_attempt_at = ?, updated_at = ?
			WHERE id = ? AND tenant = ? AND subscription_id = ?`,
			StatusPending, now, now, deliveryID, tenant, subscriptionID); err != nil {
			return fmt.Errorf("webhooks: resend %s: %w", deliveryID, err)
		}
		ds, err := s.loadDeliveries(ctx, tx, `SELECT `+deliveryColumns+where, deliveryID, tenant, subscriptionID)
		if err != nil {
			return err
		}
		if len(ds) != 1 {
			return ErrNotFound
		}
		d = ds[0]
		return nil
	})
	return d, err
}

// checkSubscription returns ErrNotFound unless subscriptionID is "" or one of
// tenant's subscriptions.
func (s *Store) checkSubscription(ctx context.Context, q querier, tenant, subscriptionID string) error {
	if subscriptionID == "" {
		return nil
	}
	var one int
	err := s.queryRow(ctx, q, `SELECT 1 FROM webhook_subscriptions WHERE id = ? AND tenant = ?`,
		subscriptionID, tenant).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("webhooks: subscription %s: %w", subscriptionID, err)
	}
	return nil
}

// loadDeliveries runs query, which selects deliveryColumns, and attaches each
// delivery's attempts.
func (s *Store) loadDeliveries(ctx context.Context, q querier, query string, args ...any) ([]Delivery, error) {
	rows, err := s.query(ctx, q, query, args...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list deliveries: %w", err)
	}
	defer rows.Close()
	deliveries := []Delivery{}
	byID := map[string]int{}
	for rows.Next() {
		var (
			d       Delivery
			next    sql.NullInt64
			created int64
		)
		if err := rows.Scan(&d.ID, &d.SubscriptionID, &d.Tenant, &d.EventID, &d.EventType, &d.URL,
			&d.WebhookID, &d.Status, &next, &created); err != nil {
			return nil, fmt.Errorf("webhooks: list deliveries: %w", err)
		}
		d.NextAttemptAt = fromNullMillis(next)
		d.CreatedAt = fromMillis(created)
		d.Attempts = []Attempt{}
		byID[d.ID] = len(deliveries)
		deliveries = append(deliveries, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: list deliveries: %w", err)
	}
	rows.Close()
	if len(deliveries) == 0 {
		return deliveries, nil
	}

	ids := make([]any, 0, len(deliveries))
	for _, d := range deliveries {
		ids = append(ids, d.ID)
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	arows, err := s.query(ctx, q, `SELECT delivery_id, attempted_at, status_code, latency_ms, error_text, response_snippet
		FROM webhook_attempts WHERE delivery_id IN (`+in+`) ORDER BY delivery_id, attempt_no`, ids...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list attempts: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var (
			deliveryID string
			a          Attempt
			at         int64
		)
		if err := arows.Scan(&deliveryID, &at, &a.StatusCode, &a.LatencyMS, &a.Error, &a.ResponseSnippet); err != nil {
			return nil, fmt.Errorf("webhooks: list attempts: %w", err)
		}
		a.At = fromMillis(at)
		if i, ok := byID[deliveryID]; ok {
			deliveries[i].Attempts = append(deliveries[i].Attempts, a)
		}
	}
	if err := arows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: list attempts: %w", err)
	}
	return deliveries, nil
}
