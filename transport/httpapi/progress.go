package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/phonepipe/phonepipe/domain"
	"github.com/phonepipe/phonepipe/transport/live"
)

// LiveUpdate turns an import's state into a live-progress update.
func LiveUpdate(s domain.ImportSummary) (live.Update, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return live.Update{}, fmt.Errorf("encode import %s: %w", s.ID, err)
	}
	return live.Update{ImportID: s.ID, Seq: s.Seq, Completed: s.Status == domain.StatusCompleted, Import: b}, nil
}

func (s *Server) getProgress(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tenant := TenantFrom(ctx)
	id := r.PathValue("id")
	if _, err := s.cfg.Imports.Get(ctx, tenant, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	var since int64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_since", "since must be a non-negative integer"))
			return
		}
		since = n
	}
	s.cfg.Live.Serve(w, r, id, since, func(ctx context.Context) (live.Update, error) {
		im, err := s.cfg.Imports.Get(ctx, tenant, id)
		if err != nil {
			return live.Update{}, err
		}
		return LiveUpdate(im.Summary())
	})
}
