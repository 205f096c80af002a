package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/domain/phone"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/storage"
	"github.com/phonepipe/phonepipe/transport/upload"
)

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 191

// acceptedBody is the answer to an accepted upload.
type acceptedBody struct {
	ID        string            `json:"id"`
	Status    string            `json:"status"`
	Total     int               `json:"total"`
	CreatedAt time.Time         `json:"created_at"`
	Links     map[string]string `json:"links"`
}

func accepted(im domain.Import) acceptedBody {
	self := "/v1/imports/" + im.ID
	return acceptedBody{
		ID: im.ID, Status: string(domain.StatusAccepted), Total: im.Total, CreatedAt: im.CreatedAt,
		Links: map[string]string{"self": self, "results": self + "/results", "progress": self + "/progress"},
	}
}

func (s *Server) postImport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tenant := TenantFrom(ctx)
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if len(key) > maxIdempotencyKey {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_idempotency_key",
			fmt.Sprintf("Idempotency-Key is longer than %d bytes", maxIdempotencyKey)))
		return
	}
	if key != "" && s.answerRepeat(w, r, tenant, key) {
		return
	}
	up, err := upload.Decode(r, s.cfg.TempDir, s.cfg.Limits)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer up.Close()
	im, err := s.newImport(tenant, up)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The client waits for this transaction: it goes before the
	// subscribers queued for the embedded database's write lock.
	err = storage.InTx(storage.WithWritePriority(ctx), s.cfg.DB.Write, func(ctx context.Context) error {
		return s.store(ctx, im, key, up)
	})
	if errors.Is(err, projections.ErrDuplicateKey) && s.answerRepeat(w, r, tenant, key) {
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.cfg.OnAccepted != nil {
		s.cfg.OnAccepted()
	}
	w.Header().Set("Location", "/v1/imports/"+im.ID)
	writeJSON(w, http.StatusAccepted, accepted(im))
}

// answerRepeat answers a repeated Idempotency-Key with the import it created.
func (s *Server) answerRepeat(w http.ResponseWriter, r *http.Request, tenant, key string) bool {
	im, err := s.cfg.Imports.ByIdempotencyKey(r.Context(), tenant, key)
	if err != nil {
		return false
	}
	w.Header().Set("Location", "/v1/imports/"+im.ID)
	writeJSON(w, http.StatusOK, accepted(im))
	return true
}

// newImport checks the upload's options and builds the import.
func (s *Server) newImport(tenant string, up *upload.Upload) (domain.Import, error) {
	region := s.cfg.DefaultRegion
	if up.Options.DefaultRegion != "" {
		norm, ok := phone.NormalizeRegion(up.Options.DefaultRegion)
		if !ok {
			return domain.Import{}, errorf(http.StatusUnprocessableEntity, "unknown_region",
				fmt.Sprintf("default_region %q is not an ISO 3166-1 alpha-2 region the phone library knows", up.Options.DefaultRegion))
		}
		region = norm
	}
	if err := checkWebhookURL(up.Options.WebhookURL); err != nil {
		return domain.Import{}, err
	}
	im, err := domain.NewImport(newID("imp"), tenant, up.Count, s.cfg.Now())
	if err != nil {
		return domain.Import{}, errorf(http.StatusUnprocessableEntity, "no_rows", "the upload has no data rows")
	}
	im.DefaultRegion = region
	im.WebhookURL = up.Options.WebhookURL
	im.PhoneMetadata = phone.MetadataVersion()
	return im, nil
}

// store writes the import, its rows and ImportAccepted in one transaction.
func (s *Server) store(ctx context.Context, im domain.Import, key string, up *upload.Upload) error {
	if err := s.cfg.Imports.Create(ctx, im, key); err != nil {
		return err
	}
	if up.Options.NoLookup && s.cfg.LookupOptOut != nil {
		if err := s.cfg.LookupOptOut(ctx, im.ID); err != nil {
			return err
		}
	}
	rows, err := s.cfg.Uploads.Writer(ctx, im.ID)
	if err != nil {
		return err
	}
	n := 0
	err = up.Each(func(row upload.Row) error {
		n++
		region := strings.ToUpper(strings.TrimSpace(row.Region))
		return rows.Add(storage.StoredRow{Row: n, Input: row.Number, Region: region, Ref: row.Ref})
	})
	if err != nil {
		return fmt.Errorf("store rows of %s: %w", im.ID, err)
	}
	if err := rows.Flush(); err != nil {
		return err
	}
	if n != im.Total {
		return fmt.Errorf("store rows of %s: stored %d of %d rows", im.ID, n, im.Total)
	}
	return s.cfg.Events.Publish(ctx, &domain.ImportAccepted{
		ImportID: im.ID, Tenant: im.Tenant, Total: im.Total, DefaultRegion: im.DefaultRegion, AcceptedAt: im.CreatedAt,
	})
}

// checkWebhookURL accepts empty or an absolute http(s) URL.
func checkWebhookURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 2048 {
		return errorf(http.StatusUnprocessableEntity, "invalid_webhook_url",
			"webhook_url must be an absolute http or https URL of at most 2048 bytes")
	}
	return nil
}

func (s *Server) getImport(w http.ResponseWriter, r *http.Request) {
	im, err := s.cfg.Imports.Get(r.Context(), TenantFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, im.Summary())
}
