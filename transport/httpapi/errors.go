package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/upload"
)

// apiError is a client-facing error: status, machine code, message and,
// for uploads, the line it concerns.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

// writeError answers err in the contract's error shape. Errors that are not
// the client's are logged and answered as 500 without internals.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ae *apiError
		ue *upload.Error
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &ue):
		ae = &apiError{Status: ue.Status, Code: ue.Code, Message: ue.Message, Line: ue.Line}
	case errors.Is(err, domain.ErrNotFound):
		ae = errorf(http.StatusNotFound, "not_found", "no such resource")
	default:
		s.logger.ErrorContext(r.Context(), "request failed", slog.String("path", r.URL.Path), slog.Any("err", err))
		ae = errorf(http.StatusInternalServerError, "internal", "internal error")
	}
	writeJSON(w, ae.Status, map[string]*apiError{"error": ae})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
