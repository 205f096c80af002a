package webhooks

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/storage"
)

// EventImportCompleted is the webhook event type of a completed import.
const EventImportCompleted = "import.completed"

// CompletionOutbox records the deliveries of import.completed inside the
// notify handler's unit of work (it implements handlers.WebhookOutbox).
type CompletionOutbox struct {
	Store *Store
	// Secret is the configured --webhook-secret; empty means each tenant's
	// generated, persisted one (EnsureTenantSecrets creates them up front).
	Secret string
	// CorrelationID returns the correlation id of the handled message.
	CorrelationID func(ctx context.Context) string
}

// EnqueueImportCompleted implements handlers.WebhookOutbox.
func (o CompletionOutbox) EnqueueImportCompleted(ctx context.Context, ev domain.ImportCompleted) error {
	tx, err := storage.MustTx(ctx)
	if err != nil {
		return fmt.Errorf("webhooks: enqueue %s: %w", ev.Import.ID, err)
	}
	data, err := json.Marshal(ev.Import)
	if err != nil {
		return fmt.Errorf("webhooks: encode import %s: %w", ev.Import.ID, err)
	}
	secret := ""
	if ev.WebhookURL != "" {
		// Reads only: EnsureTenantSecrets persisted it before handlers ran,
		// so no second connection writes while this transaction is open.
		if secret, err = o.Store.TenantSecret(ctx, ev.Tenant, o.Secret); err != nil {
			return err
		}
	}
	var corr string
	if o.CorrelationID != nil {
		corr = o.CorrelationID(ctx)
	}
	completedAt := ev.Import.CreatedAt
	if ev.Import.CompletedAt != nil {
		completedAt = *ev.Import.CompletedAt
	}
	return o.Store.Enqueue(ctx, tx, Event{
		ID:            "evt_" + ev.Import.ID + "_completed",
		Tenant:        ev.Tenant,
		Type:          EventImportCompleted,
		Timestamp:     completedAt,
		Data:          data,
		TargetURL:     ev.WebhookURL,
		CorrelationID: corr,
	}, secret)
}

// EnsureTenantSecrets makes sure each tenant has its signing secret, so the
// notify handler only ever reads them.
func (s *Store) EnsureTenantSecrets(ctx context.Context, tenants []string, configured string) error {
	for _, t := range tenants {
		if _, err := s.TenantSecret(ctx, t, configured); err != nil {
			return err
		}
	}
	return nil
}
