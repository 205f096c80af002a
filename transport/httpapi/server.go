package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/phonepipe/phonepipe/handlers"
	"github.com/phonepipe/phonepipe/projections"
	"github.com/phonepipe/phonepipe/transport/bus"
	"github.com/phonepipe/phonepipe/transport/live"
	"github.com/phonepipe/phonepipe/transport/storage"
	"github.com/phonepipe/phonepipe/transport/upload"
	"github.com/phonepipe/phonepipe/transport/webhooks"
)

// Config configures the HTTP API.
type Config struct {
	DB      *storage.DB
	Imports *projections.Imports
	Results *projections.Results
	Numbers *projections.Numbers
	// Stats serves GET /v1/stats/carriers (503 when unset).
	Stats   *projections.CarrierStats
	Uploads *storage.Uploads
	// Events publishes ImportAccepted in the accepting transaction.
	Events handlers.EventPublisher
	// APIKeys are the accepted keys; empty means auth is off.
	APIKeys []APIKey
	// Limits bound uploads.
	Limits upload.Limits
	// ImportRate limits POST /v1/imports per tenant; zero means no limit.
	ImportRate RateLimit
	// TempDir is where uploads are spooled before they are stored.
	TempDir string
	// DefaultRegion is the server's --default-region.
	DefaultRegion string
	// Webhooks, when set, serves the subscription and delivery routes.
	Webhooks *webhooks.Store
	// Live, when set, serves live progress over WebSocket.
	Live *live.Hub
	// OnAccepted, if set, is called for every accepted upload (metrics).
	OnAccepted func()
	// LookupOptOut, if set, records in the accepting transaction that an
	// upload asked for no third-party lookups (?lookup=false).
	LookupOptOut func(ctx context.Context, importID string) error
	// Ready reports whether the backend is reachable and handlers run.
	Ready func(ctx context.Context) error
	// Extra mounts more routes (live progress, webhooks, pages) on the mux;
	// they run behind authentication when their pattern starts with /v1/.
	Extra  []Route
	Logger *slog.Logger
	Now    func() time.Time
}

// Route is an additional route.
type Route struct {
	Pattern string
	Handler http.Handler
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.DB == nil || c.Imports == nil || c.Results == nil || c.Numbers == nil || c.Uploads == nil || c.Events == nil {
		return errors.New("httpapi: missing store or publisher")
	}
	return nil
}

// Server is the HTTP API.
type Server struct {
	cfg    Config
	logger *slog.Logger
	mux    *http.ServeMux
}

// New builds the API.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, logger: cfg.Logger, mux: http.NewServeMux()}
	api := func(pattern string, h http.HandlerFunc) {
		s.mux.Handle(pattern, s.authenticate(h))
	}
	api("POST /v1/imports", s.limitImports(s.postImport))
	api("GET /v1/imports/{id}", s.getImport)
	api("GET /v1/imports/{id}/results", s.getResults)
	api("GET /v1/numbers/{e164}", s.getNumber)
	api("GET /v1/numbers/{e164}/events", s.getNumberEvents)
	api("GET /v1/stats/carriers", s.getCarrierStats)
	if cfg.Live != nil {
		api("GET /v1/imports/{id}/progress", s.getProgress)
	}
	if cfg.Webhooks != nil {
		api("POST /v1/webhooks", s.postWebhook)
		api("GET /v1/webhooks", s.listWebhooks)
		api("DELETE /v1/webhooks/{id}", s.deleteWebhook)
		api("GET /v1/webhooks/{id}/deliveries", s.listDeliveries)
		api("POST /v1/webhooks/{id}/deliveries/{delivery_id}/resend", s.resendDelivery)
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /openapi.yaml", s.openAPI)
	for _, r := range cfg.Extra {
		if len(r.Pattern) > 0 && strings.Contains(r.Pattern, "/v1/") {
			s.mux.Handle(r.Pattern, s.authenticate(r.Handler))
		} else {
			s.mux.Handle(r.Pattern, r.Handler)
		}
	}
	return s, nil
}

// Handler is the root handler, with request ids and correlation ids.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = newID("req")
		}
		w.Header().Set("X-Request-Id", id)
		s.accessLog(s.mux, id, w, r.WithContext(bus.WithCorrelationID(r.Context(), id)))
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
