package httpapi

import (
	"net/http"
	"strings"

	"github.com/phonepipe/phonepipe/projections"
)

// carrierStatsBody is the answer of GET /v1/stats/carriers.
type carrierStatsBody struct {
	Carriers []projections.CarrierStat `json:"carriers"`
}

// getCarrierStats answers the tenant's numbers per region and carrier;
// ?region=HU keeps one region.
func (s *Server) getCarrierStats(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Stats == nil {
		s.writeError(w, r, errorf(http.StatusServiceUnavailable, "unavailable", "carrier statistics are not served here"))
		return
	}
	region := strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("region")))
	if len(region) > 8 {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_region", "region must be an ISO 3166-1 alpha-2 code or 001"))
		return
	}
	stats, err := s.cfg.Stats.Carriers(r.Context(), TenantFrom(r.Context()), region)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, carrierStatsBody{Carriers: stats})
}
