package httpapi

import (
	"net/http"

	"github.com/phonepipe/phonepipe/domain/phone"
)

// numberParam reads the {e164} path parameter (plain or %2B-encoded).
func (s *Server) numberParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	e164, err := phone.ParseE164(r.PathValue("e164"))
	if err != nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_number", "the path must hold an E.164 number such as +3612345678"))
		return "", false
	}
	return e164, true
}

func (s *Server) getNumber(w http.ResponseWriter, r *http.Request) {
	e164, ok := s.numberParam(w, r)
	if !ok {
		return
	}
	n, err := s.cfg.Numbers.Number(r.Context(), TenantFrom(r.Context()), e164)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) getNumberEvents(w http.ResponseWriter, r *http.Request) {
	e164, ok := s.numberParam(w, r)
	if !ok {
		return
	}
	evs, err := s.cfg.Numbers.Events(r.Context(), TenantFrom(r.Context()), e164)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"e164": e164, "events": evs})
}
