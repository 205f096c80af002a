package webhooks

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Event is something that happened and is to be delivered to the tenant's
// webhook targets.
type Event struct {
	// ID identifies the event stably, e.g. "evt_<import id>"; it is the
	// idempotency key (per tenant) of Enqueue.
	ID     string
	Tenant string
	Type   string
	// Timestamp is when the event happened; zero means the time of Enqueue.
	Timestamp time.Time
	// Data is the JSON payload under "data"; empty means {}.
	Data json.RawMessage
	// TargetURL is the per-import webhook URL; "" means none.
	TargetURL string
	// CorrelationID, when set, is sent as X-Correlation-Id.
	CorrelationID string
}

// payload is the Standard Webhooks JSON body.
type payload struct {
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// eventBody renders the body sent for ev; ts is used when ev.Timestamp is zero.
func eventBody(ev Event, ts time.Time) ([]byte, error) {
	if !ev.Timestamp.IsZero() {
		ts = ev.Timestamp
	}
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	body, err := json.Marshal(payload{Type: ev.Type, Timestamp: ts.UTC().Format(time.RFC3339Nano), Data: data})
	if err != nil {
		return nil, fmt.Errorf("webhooks: encoding event %s: %w", ev.ID, err)
	}
	return body, nil
}

// webhookID derives the stable webhook-id of the delivery of an event to one
// target, so it is the same on every attempt and across re-enqueues.
func webhookID(tenant, eventID, targetKey string) string {
	h := sha256.New()
	for _, part := range []string{tenant, eventID, targetKey} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// target is one destination of an event.
type target struct {
	subscriptionID, url, secret, key string
}

// Enqueue records ev for delivery inside the caller's transaction tx, so the
// event exists if and only if tx commits. It creates one pending delivery per
// target: ev.TargetURL (if set) signed with tenantSecret, plus every enabled
// subscription of ev.Tenant whose EventTypes contains ev.Type, each signed with
// its own secret. The body is rendered and stored now, so every attempt sends
// the same bytes.
//
// Enqueue is idempotent per (Tenant, ID): when the event was already enqueued it
// does nothing and returns nil, so a redelivered message re-enqueues nothing.
// It never sends anything; a Dispatcher does.
func (s *Store) Enqueue(ctx context.Context, tx *sql.Tx, ev Event, tenantSecret string) error {
	switch {
	case tx == nil:
		return errors.New("webhooks: enqueue needs a transaction")
	case ev.ID == "" || ev.Tenant == "" || ev.Type == "":
		return errors.New("webhooks: event id, tenant and type are required")
	}
	if ev.TargetURL != "" {
		if err := ValidateSecret(tenantSecret); err != nil {
			return fmt.Errorf("webhooks: tenant secret for event %s: %w", ev.ID, err)
		}
	}
	now := s.now()
	body, err := eventBody(ev, now)
	if err != nil {
		return err
	}
	ins := s.dialect.insertIgnore("webhook_events",
		[]string{"tenant", "event_id", "event_type", "body", "correlation_id", "created_at"})
	res, err := s.exec(ctx, tx, ins, ev.Tenant, ev.ID, ev.Type, string(body), ev.CorrelationID, toMillis(now))
	if err != nil {
		return fmt.Errorf("webhooks: enqueue event %s: %w", ev.ID, err)
	}
	if inserted, err := affectedOne(res); err != nil {
		return err
	} else if !inserted {
		return nil // already enqueued
	}

	targets, err := s.targets(ctx, tx, ev, tenantSecret)
	if err != nil {
		return err
	}
	for _, t := range targets {
		id, err := newID("dlv_")
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `INSERT INTO webhook_deliveries
			(id, tenant, event_id, event_type, subscription_id, url, webhook_id, secret, status,
			 schedule_index, attempt_count, next_attempt_at, locked_until, lock_token, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, 0, '', ?, ?)`,
			id, ev.Tenant, ev.ID, ev.Type, t.subscriptionID, t.url, webhookID(ev.Tenant, ev.ID, t.key),
			t.secret, StatusPending, toMillis(now), toMillis(now), toMillis(now))
		if err != nil {
			return fmt.Errorf("webhooks: enqueue delivery of %s to %s: %w", ev.ID, t.key, err)
		}
	}
	return nil
}

// targets lists where ev goes: its per-import URL and the matching enabled
// subscriptions.
func (s *Store) targets(ctx context.Context, tx *sql.Tx, ev Event, tenantSecret string) ([]target, error) {
	var targets []target
	if ev.TargetURL != "" {
		targets = append(targets, target{url: ev.TargetURL, secret: tenantSecret, key: "url:" + ev.TargetURL})
	}
	rows, err := s.query(ctx, tx, `SELECT id, url, event_types, secret FROM webhook_subscriptions
		WHERE tenant = ? AND disabled = 0 ORDER BY created_at, id`, ev.Tenant)
	if err != nil {
		return nil, fmt.Errorf("webhooks: subscriptions of %s: %w", ev.Tenant, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			t         target
			typesJSON string
			types     []string
		)
		if err := rows.Scan(&t.subscriptionID, &t.url, &typesJSON, &t.secret); err != nil {
			return nil, fmt.Errorf("webhooks: subscriptions of %s: %w", ev.Tenant, err)
		}
		if err := json.Unmarshal([]byte(typesJSON), &types); err != nil {
			return nil, fmt.Errorf("webhooks: subscription %s event types: %w", t.subscriptionID, err)
		}
		if slices.Contains(types, ev.Type) {
			t.key = "sub:" + t.subscriptionID
			targets = append(targets, t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: subscriptions of %s: %w", ev.Tenant, err)
	}
	return targets, nil
}
