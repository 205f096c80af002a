package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Subscription is a tenant's standing request to receive events of some types
// at a URL, signed with the subscription's own secret.
type Subscription struct {
	ID         string   `json:"id"`
	Tenant     string   `json:"tenant"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	// Secret is only filled in by CreateSubscription; listings omit it.
	Secret   string `json:"secret,omitempty"`
	Disabled bool   `json:"disabled"`
	// DisabledReason says why the dispatcher disabled the subscription (410 Gone,
	// or failing continuously for DispatcherConfig.DisableAfter).
	DisabledReason string    `json:"disabled_reason,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// validateURL accepts absolute http and https URLs with a host.
func validateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("webhooks: invalid url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("webhooks: invalid url %q: scheme must be http or https", raw)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("webhooks: invalid url %q: missing host", raw)
	}
	return nil
}

// CreateSubscription registers endpoint for tenant's events of the given types and
// returns the subscription including its newly generated secret (the only time
// the secret is returned). The URL must be an absolute http(s) URL and at least
// one event type is required.
func (s *Store) CreateSubscription(ctx context.Context, tenant, endpoint string, eventTypes []string) (Subscription, error) {
	if tenant == "" {
		return Subscription{}, errors.New("webhooks: tenant is required")
	}
	if err := validateURL(endpoint); err != nil {
		return Subscription{}, err
	}
	types := make([]string, 0, len(eventTypes))
	for _, t := range eventTypes {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return Subscription{}, errors.New("webhooks: at least one event type is required")
	}
	typesJSON, err := json.Marshal(types)
	if err != nil {
		return Subscription{}, fmt.Errorf("webhooks: encoding event types: %w", err)
	}
	id, err := newID("sub_")
	if err != nil {
		return Subscription{}, err
	}
	secret, err := NewSecret()
	if err != nil {
		return Subscription{}, err
	}
	now := s.now().UTC()
	_, err = s.exec(ctx, s.db, `INSERT INTO webhook_subscriptions
		(id, tenant, url, event_types, secret, disabled, disabled_reason, failing_since, created_at)
		VALUES (?, ?, ?, ?, ?, 0, '', NULL, ?)`,
		id, tenant, endpoint, string(typesJSON), secret, toMillis(now))
	if err != nil {
		return Subscription{}, fmt.Errorf("webhooks: create subscription: %w", err)
	}
	return Subscription{
		ID: id, Tenant: tenant, URL: endpoint, EventTypes: types, Secret: secret,
		CreatedAt: fromMillis(toMillis(now)),
	}, nil
}

// ListSubscriptions returns tenant's subscriptions, oldest first, without
// their secrets.
func (s *Store) ListSubscriptions(ctx context.Context, tenant string) ([]Subscription, error) {
	rows, err := s.query(ctx, s.db, `SELECT id, tenant, url, event_types, disabled, disabled_reason, created_at
		FROM webhook_subscriptions WHERE tenant = ? ORDER BY created_at, id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list subscriptions: %w", err)
	}
	defer rows.Close()
	subs := []Subscription{}
	for rows.Next() {
		var (
			sub       Subscription
			typesJSON string
			disabled  int
			created   int64
		)
		if err := rows.Scan(&sub.ID, &sub.Tenant, &sub.URL, &typesJSON, &disabled, &sub.DisabledReason, &created); err != nil {
			return nil, fmt.Errorf("webhooks: list subscriptions: %w", err)
		}
		if err := json.Unmarshal([]byte(typesJSON), &sub.EventTypes); err != nil {
			return nil, fmt.Errorf("webhooks: subscription %s event types: %w", sub.ID, err)
		}
		sub.Disabled = disabled != 0
		sub.CreatedAt = fromMillis(created)
		subs = append(subs, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: list subscriptions: %w", err)
	}
	return subs, nil
}

// DeleteSubscription deletes tenant's subscription id together with its
// deliveries and their attempts. It returns ErrNotFound when the subscription
// does not exist or belongs to another tenant.
func (s *Store) DeleteSubscription(ctx context.Context, tenant, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM webhook_subscriptions WHERE tenant = ? AND id = ?`, tenant, id)
		if err != nil {
			return fmt.Errorf("webhooks: delete subscription: %w", err)
		}
		if ok, err := affectedOne(res); err != nil {
			return err
		} else if !ok {
			return ErrNotFound
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM webhook_attempts WHERE delivery_id IN
			(SELECT id FROM webhook_deliveries WHERE tenant = ? AND subscription_id = ?)`, tenant, id); err != nil {
			return fmt.Errorf("webhooks: delete subscription attempts: %w", err)
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM webhook_deliveries WHERE tenant = ? AND subscription_id = ?`, tenant, id); err != nil {
			return fmt.Errorf("webhooks: delete subscription deliveries: %w", err)
		}
		return nil
	})
}

// TenantSecret returns the secret that signs tenant's per-import webhooks:
// configured when it is non-empty (it must be a valid secret), otherwise a
// secret generated on first use and persisted in tenant_secrets, so every later
// call, from any process, returns the same one.
func (s *Store) TenantSecret(ctx context.Context, tenant, configured string) (string, error) {
	if configured != "" {
		if err := ValidateSecret(configured); err != nil {
			return "", fmt.Errorf("webhooks: configured secret for tenant %q: %w", tenant, err)
		}
		return configured, nil
	}
	if tenant == "" {
		return "", errors.New("webhooks: tenant is required")
	}
	const sel = `SELECT secret FROM tenant_secrets WHERE tenant = ?`
	var secret string
	err := s.queryRow(ctx, s.db, sel, tenant).Scan(&secret)
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("webhooks: tenant secret: %w", err)
	}
	fresh, err := NewSecret()
	if err != nil {
		return "", err
	}
	// Another process may insert first; then its secret wins and is read back.
	ins := s.dialect.insertIgnore("tenant_secrets", []string{"tenant", "secret", "created_at"})
	if _, err := s.exec(ctx, s.db, ins, tenant, fresh, toMillis(s.now())); err != nil {
		return "", fmt.Errorf("webhooks: store tenant secret: %w", err)
	}
	if err := s.queryRow(ctx, s.db, sel, tenant).Scan(&secret); err != nil {
		return "", fmt.Errorf("webhooks: tenant secret: %w", err)
	}
	return secret, nil
}
