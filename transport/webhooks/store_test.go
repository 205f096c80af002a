package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestMigrateIsIdempotent(t *testing.T) {
	s, _ := newTestStore(t)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if err := NewStore(s.db, "oracle").Migrate(context.Background()); err == nil {
		t.Fatal("Migrate with an unknown dialect succeeded")
	}
}

func TestCreateAndListSubscriptions(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	sub, err := s.CreateSubscription(ctx, "acme", "https://example.com/hook", []string{"import.completed", " ", "import.completed", "import.failed"})
	if err != nil {
		t.Fatal(err)
	}
	if sub.ID == "" || sub.Tenant != "acme" || sub.CreatedAt.IsZero() || sub.Disabled {
		t.Fatalf("bad subscription %+v", sub)
	}
	if err := ValidateSecret(sub.Secret); err != nil {
		t.Fatalf("secret %q: %v", sub.Secret, err)
	}
	if !slices.Equal(sub.EventTypes, []string{"import.completed", "import.failed"}) {
		t.Fatalf("event types %v", sub.EventTypes)
	}
	subs, err := s.ListSubscriptions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].ID != sub.ID || subs[0].Secret != "" || !slices.Equal(subs[0].EventTypes, sub.EventTypes) ||
		!subs[0].CreatedAt.Equal(sub.CreatedAt) {
		t.Fatalf("listed %+v, created %+v", subs, sub)
	}
	b, _ := json.Marshal(subs[0])
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, ok := m["secret"]; ok {
		t.Fatalf("listed subscription JSON has a secret: %s", b)
	}

	for _, bad := range []struct{ tenant, url string }{
		{"", "https://example.com"},
		{"acme", "ftp://example.com"},
		{"acme", "/relative"},
		{"acme", "https://"},
	} {
		if _, err := s.CreateSubscription(ctx, bad.tenant, bad.url, []string{"x"}); err == nil {
			t.Errorf("CreateSubscription(%q, %q) accepted", bad.tenant, bad.url)
		}
	}
	if _, err := s.CreateSubscription(ctx, "acme", "https://example.com", nil); err == nil {
		t.Error("subscription without event types accepted")
	}
}

func TestTenantSecret(t *testing.T) {
	ctx := context.Background()
	s, path := newTestStore(t)
	first, err := s.TenantSecret(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateSecret(first); err != nil {
		t.Fatalf("generated secret %q: %v", first, err)
	}
	// Persisted: the same from this store and from another process's store.
	again, _ := s.TenantSecret(ctx, "acme", "")
	other, err := NewStore(openDB(t, path), s.dialect).TenantSecret(ctx, "acme", "")
	if err != nil || again != first || other != first {
		t.Fatalf("secrets differ: %q %q %q (%v)", first, again, other, err)
	}
	if b, _ := s.TenantSecret(ctx, "globex", ""); b == first {
		t.Fatal("two tenants share a secret")
	}
	configured, _ := NewSecret()
	if got, err := s.TenantSecret(ctx, "acme", configured); err != nil || got != configured {
		t.Fatalf("configured secret: %q, %v", got, err)
	}
	if _, err := s.TenantSecret(ctx, "acme", "whsec_%%%"); err == nil {
		t.Fatal("invalid configured secret accepted")
	}
}

func TestEnqueueIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	sub, err := s.CreateSubscription(ctx, "acme", "https://example.com/hook", []string{"import.completed"})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := s.TenantSecret(ctx, "acme", "")
	ev := testEvent("evt_1", "acme", "import.completed")
	ev.TargetURL = "https://example.org/per-import"
	enqueue(t, s, ev, secret)
	first := onlyDelivery(t, s, "acme", "")
	// A redelivered message enqueues the same event again, even after a new
	// subscription appeared: nothing new is created.
	if _, err := s.CreateSubscription(ctx, "acme", "https://example.net/hook", []string{"import.completed"}); err != nil {
		t.Fatal(err)
	}
	enqueue(t, s, ev, secret)
	if d := onlyDelivery(t, s, "acme", ""); d.ID != first.ID || d.WebhookID != first.WebhookID {
		t.Fatalf("per-import delivery changed: %+v vs %+v", d, first)
	}
	subDelivery := onlyDelivery(t, s, "acme", sub.ID)
	if subDelivery.WebhookID == first.WebhookID {
		t.Fatal("two targets share a webhook-id")
	}
	if first.Status != StatusPending || first.NextAttemptAt == nil || first.URL != ev.TargetURL ||
		first.EventID != "evt_1" || first.EventType != "import.completed" || len(first.Attempts) != 0 {
		t.Fatalf("unexpected delivery %+v", first)
	}
}

func TestEnqueueRollsBackWithCallerTransaction(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	secret, _ := s.TenantSecret(ctx, "acme", "")
	ev := testEvent("evt_1", "acme", "import.completed")
	ev.TargetURL = "https://example.org/per-import"
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, tx, ev, secret); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.ListDeliveries(ctx, "acme", ""); len(ds) != 0 {
		t.Fatalf("rolled back enqueue left %d deliveries", len(ds))
	}
	// The event id was not consumed by the rolled back transaction.
	enqueue(t, s, ev, secret)
	onlyDelivery(t, s, "acme", "")
}

func TestEnqueueValidation(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ev := testEvent("evt_1", "acme", "import.completed")
	if err := s.Enqueue(ctx, nil, ev, ""); err == nil {
		t.Error("nil tx accepted")
	}
	if err := s.Enqueue(ctx, tx, Event{Tenant: "acme", Type: "x"}, ""); err == nil {
		t.Error("event without id accepted")
	}
	ev.TargetURL = "https://example.org"
	if err := s.Enqueue(ctx, tx, ev, ""); err == nil {
		t.Error("per-import target without secret accepted")
	}
	ev.TargetURL, ev.Data = "", []byte(`{not json`)
	if err := s.Enqueue(ctx, tx, ev, ""); err == nil {
		t.Error("invalid JSON data accepted")
	}
}

func TestEnqueueFiltersByEventType(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	completed, _ := s.CreateSubscription(ctx, "acme", "https://example.com/a", []string{"import.completed"})
	failed, _ := s.CreateSubscription(ctx, "acme", "https://example.com/b", []string{"import.failed"})
	both, _ := s.CreateSubscription(ctx, "acme", "https://example.com/c", []string{"import.failed", "import.completed"})
	foreign, _ := s.CreateSubscription(ctx, "globex", "https://example.com/d", []string{"import.completed"})

	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	for _, c := range []struct {
		tenant, sub string
		want        int
	}{
		{"acme", completed.ID, 1}, {"acme", failed.ID, 0}, {"acme", both.ID, 1}, {"globex", foreign.ID, 0}, {"acme", "", 0},
	} {
		ds, err := s.ListDeliveries(ctx, c.tenant, c.sub)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != c.want {
			t.Errorf("subscription %s: %d deliveries, want %d", c.sub, len(ds), c.want)
		}
	}
}

func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	sub, _ := s.CreateSubscription(ctx, "acme", "https://example.com/a", []string{"import.completed"})
	secret, _ := s.TenantSecret(ctx, "acme", "")
	ev := testEvent("evt_1", "acme", "import.completed")
	ev.TargetURL = "https://example.org/per-import"
	enqueue(t, s, ev, secret)
	d := onlyDelivery(t, s, "acme", sub.ID)
	perImport := onlyDelivery(t, s, "acme", "")

	// The same event id from another tenant is a different event.
	globexSecret, _ := s.TenantSecret(ctx, "globex", "")
	ev.Tenant = "globex"
	enqueue(t, s, ev, globexSecret)
	if g := onlyDelivery(t, s, "globex", ""); g.ID == perImport.ID || g.WebhookID == perImport.WebhookID {
		t.Fatal("tenants share a delivery")
	}

	if subs, _ := s.ListSubscriptions(ctx, "globex"); len(subs) != 0 {
		t.Fatalf("globex sees %d subscriptions", len(subs))
	}
	if _, err := s.ListDeliveries(ctx, "globex", sub.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ListDeliveries of another tenant's subscription: %v", err)
	}
	if _, err := s.Resend(ctx, "globex", sub.ID, d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resend of another tenant's delivery: %v", err)
	}
	if _, err := s.Resend(ctx, "globex", "", perImport.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resend of another tenant's per-import delivery: %v", err)
	}
	if _, err := s.Resend(ctx, "acme", "", d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resend under the wrong subscription: %v", err)
	}
	if err := s.DeleteSubscription(ctx, "globex", sub.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteSubscription of another tenant's subscription: %v", err)
	}
	if _, err := s.ListDeliveries(ctx, "acme", "sub_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ListDeliveries of a missing subscription: %v", err)
	}

	// The owner can delete; its deliveries go with it, per-import ones stay.
	if err := s.DeleteSubscription(ctx, "acme", sub.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSubscription(ctx, "acme", sub.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.ListDeliveries(ctx, "acme", sub.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ListDeliveries of a deleted subscription: %v", err)
	}
	var n int
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM webhook_deliveries WHERE subscription_id = ?`, sub.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d deliveries of the deleted subscription remain (%v)", n, err)
	}
	onlyDelivery(t, s, "acme", "")
}

func TestResendMakesDeliveryDueNow(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	sub, _ := s.CreateSubscription(ctx, "acme", "https://example.com/a", []string{"import.completed"})
	enqueue(t, s, testEvent("evt_1", "acme", "import.completed"), "")
	d := onlyDelivery(t, s, "acme", sub.ID)
	if _, err := s.exec(ctx, s.db, `UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, schedule_index = 7 WHERE id = ?`, d.ID); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Millisecond)
	got, err := s.Resend(ctx, "acme", sub.ID, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusPending || got.NextAttemptAt == nil || got.NextAttemptAt.Before(before) ||
		got.NextAttemptAt.After(time.Now()) || got.WebhookID != d.WebhookID {
		t.Fatalf("after Resend: %+v", got)
	}
	if _, err := s.Resend(ctx, "acme", sub.ID, "dlv_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resend of a missing delivery: %v", err)
	}
}
