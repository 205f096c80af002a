package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/phonepipe/phonepipe/transport/webhooks"
)

// webhookEventTypes are the event types a subscription may ask for.
func webhookEventTypes() []string { return []string{webhooks.EventImportCompleted} }

// maxSubscriptionBody bounds POST /v1/webhooks.
const maxSubscriptionBody = 16 << 10

func (s *Server) postWebhook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL        string   `json:"url"`
		EventTypes []string `json:"event_types"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxSubscriptionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, "malformed_json", "body must be {\"url\":\"…\",\"event_types\":[\"import.completed\"]}: "+err.Error()))
		return
	}
	if req.URL == "" {
		s.writeError(w, r, errorf(http.StatusUnprocessableEntity, "invalid_webhook_url", "url is required"))
		return
	}
	if err := checkWebhookURL(req.URL); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(req.EventTypes) == 0 {
		req.EventTypes = webhookEventTypes()
	}
	for _, t := range req.EventTypes {
		if !slices.Contains(webhookEventTypes(), t) {
			s.writeError(w, r, errorf(http.StatusUnprocessableEntity, "unknown_event_type",
				fmt.Sprintf("event type %q is not one of %v", t, webhookEventTypes())))
			return
		}
	}
	sub, err := s.cfg.Webhooks.CreateSubscription(r.Context(), TenantFrom(r.Context()), req.URL, req.EventTypes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/webhooks/"+sub.ID)
	writeJSON(w, http.StatusCreated, sub)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	subs, err := s.cfg.Webhooks.ListSubscriptions(r.Context(), TenantFrom(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if subs == nil {
		subs = []webhooks.Subscription{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": subs})
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	err := s.cfg.Webhooks.DeleteSubscription(r.Context(), TenantFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, webhookErr(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	ds, err := s.cfg.Webhooks.ListDeliveries(r.Context(), TenantFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, webhookErr(err))
		return
	}
	if ds == nil {
		ds = []webhooks.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
}

func (s *Server) resendDelivery(w http.ResponseWriter, r *http.Request) {
	d, err := s.cfg.Webhooks.Resend(r.Context(), TenantFrom(r.Context()), r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		s.writeError(w, r, webhookErr(err))
		return
	}
	writeJSON(w, http.StatusAccepted, d)
}

// webhookErr maps the webhook store's not-found onto the API's.
func webhookErr(err error) error {
	if errors.Is(err, webhooks.ErrNotFound) {
		return errorf(http.StatusNotFound, "not_found", "no such webhook or delivery")
	}
	return err
}
