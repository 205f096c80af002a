package handlers

import (
	"context"

	"github.com/phonepipe/phonepipe/domain"
)

// NotifierName names the webhook notifier and its consumer group.
const NotifierName = "notify"

// WebhookOutbox records webhook deliveries to make, inside the unit of work
// of ctx; a dispatcher sends them later. Recording the same event twice
// records nothing new.
type WebhookOutbox interface {
	EnqueueImportCompleted(ctx context.Context, ev domain.ImportCompleted) error
}

// Notifier turns a completed import into webhook deliveries. It never sends
// anything itself: a redelivered message must not send a second webhook, so
// sending happens outside the handler with a stable webhook-id.
type Notifier struct {
	Outbox WebhookOutbox
	Dedupe Deduper
}

// HandlerName names the handler and its consumer group.
func (n Notifier) HandlerName() string { return NotifierName }

// Handle records the deliveries of one completed import.
func (n Notifier) Handle(ctx context.Context, ev *domain.ImportCompleted) error {
	first, err := n.Dedupe.FirstTime(ctx, NotifierName, ev.Import.ID)
	if err != nil || !first {
		return err
	}
	return n.Outbox.EnqueueImportCompleted(ctx, *ev)
}
